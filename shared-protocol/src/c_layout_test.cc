#include <gtest/gtest.h>

#include <cstddef>

extern "C" {
size_t vmci_c_sizeof_datagram(void);
size_t vmci_c_sizeof_queue_pair_alloc_msg(void);
size_t vmci_c_offsetof_event_qp_peer(void);
int vmci_c_invalid_handle_is_invalid(void);
}

TEST(CHeaders, C99LayoutsMatchCpp) {
  EXPECT_EQ(vmci_c_sizeof_datagram(), 24u);
  EXPECT_EQ(vmci_c_sizeof_queue_pair_alloc_msg(), 64u);
  EXPECT_EQ(vmci_c_offsetof_event_qp_peer(), 40u);
  EXPECT_TRUE(vmci_c_invalid_handle_is_invalid());
}
