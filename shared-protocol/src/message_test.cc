#include "vmci/message.h"

#include <gtest/gtest.h>

#include <map>
#include <unordered_set>

#include "vmci/proto/datagram.h"

namespace vmci {
namespace {

TEST(Handle, ComparesOrdersAndHashes) {
  const vmci_handle a{2, 10}, b{2, 11}, c{16, 1};
  EXPECT_TRUE(a == vmci_handle({2, 10}));
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a != c);
  EXPECT_TRUE(a < b);
  EXPECT_TRUE(b < c) << "by context first";
  std::unordered_set<vmci_handle> set{a, b, a};
  EXPECT_EQ(set.size(), 2u);
  std::map<vmci_handle, int> map{{c, 3}, {a, 1}};
  EXPECT_EQ(map.begin()->first, a);
}

TEST(Payload, WrittenFieldsAreLittleEndianAndReadBack) {
  PayloadWriter w;
  w.u8(1).u16(0x0302).u32(0x07060504).u64(0x0f0e0d0c0b0a0908).handle({16, 1024}).text("hi");
  const std::vector<uint8_t> expected{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                      16, 0, 0, 0, 0, 4, 0, 0, 'h', 'i'};
  EXPECT_EQ(w.bytes(), expected);
  PayloadReader r(w.bytes());
  EXPECT_EQ(r.u8(), 1);
  EXPECT_EQ(r.u16(), 0x0302);
  EXPECT_EQ(r.u32(), 0x07060504u);
  EXPECT_EQ(r.u64(), 0x0f0e0d0c0b0a0908u);
  EXPECT_EQ(r.handle(), (vmci_handle{16, 1024}));
  auto rest = r.rest();
  EXPECT_EQ(std::string(rest.begin(), rest.end()), "hi");
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Payload, AShortPayloadReadsNothingAndConsumesNothing) {
  const std::vector<uint8_t> three{1, 2, 3};
  PayloadReader r(three);
  EXPECT_FALSE(r.u32());
  EXPECT_FALSE(r.handle());
  EXPECT_FALSE(r.bytes(4));
  EXPECT_EQ(r.offset(), 0u);
  EXPECT_EQ(r.u16(), 0x0201);
  EXPECT_FALSE(r.u16());
  EXPECT_EQ(r.u8(), 3);
}

TEST(Datagram, IsTheWireFormatProtoChecks) {
  PayloadWriter w;
  w.u32(7).handle({2, 4242});
  Datagram dg({2, 4242}, {16, 1025}, w.bytes());
  EXPECT_EQ(dg.size(), 24u + 12u);
  EXPECT_EQ(dg.get()->payload_size, 12u);
  const std::span<const uint8_t> wire(reinterpret_cast<const uint8_t*>(dg.get()), dg.size());
  EXPECT_EQ(proto::check_datagram(wire), VMCI_SUCCESS);
  EXPECT_EQ(std::vector<uint8_t>(wire.begin(), wire.end()),
            proto::make_datagram({2, 4242}, {16, 1025}, w.bytes()));
  DatagramView view(dg.get());
  EXPECT_EQ(view.dst(), (vmci_handle{2, 4242}));
  EXPECT_EQ(view.src(), (vmci_handle{16, 1025}));
  auto r = view.reader();
  EXPECT_EQ(r.u32(), 7u);
  EXPECT_EQ(r.handle(), (vmci_handle{2, 4242}));
}

TEST(EventView, ReadsContextAndQueuePairEvents) {
  const auto ctx = proto::make_context_event(2, VMCI_EVENT_CTX_REMOVED, 17);
  EventView removed(reinterpret_cast<const vmci_event_data*>(ctx.data() + 24));
  EXPECT_EQ(removed.type(), uint32_t{VMCI_EVENT_CTX_REMOVED});
  EXPECT_EQ(removed.context_id(), 17u);
  EXPECT_FALSE(removed.queue_pair());

  const auto qp = proto::make_queue_pair_event(16, VMCI_EVENT_QP_PEER_DETACH, {16, 9}, 2);
  EventView detach(reinterpret_cast<const vmci_event_data*>(qp.data() + 24));
  EXPECT_EQ(detach.queue_pair(), (vmci_handle{16, 9}));
  EXPECT_EQ(detach.peer(), 2u);
  EXPECT_FALSE(detach.context_id());
}

}  // namespace
}  // namespace vmci
