#include "vmci/proto/names.h"

#include <gtest/gtest.h>

#include "vmci/vmci_call_defs.h"

namespace vmci::proto {
namespace {

// Every status code of spec §2, by name and value.
constexpr NamedValue kSpecStatusCodes[] = {
    {"VMCI_SUCCESS_QUEUEPAIR_ATTACH", 5},
    {"VMCI_SUCCESS_QUEUEPAIR_CREATE", 4},
    {"VMCI_SUCCESS_LAST_DETACH", 3},
    {"VMCI_SUCCESS_ACCESS_GRANTED", 2},
    {"VMCI_SUCCESS_ENTRY_DEAD", 1},
    {"VMCI_SUCCESS", 0},
    {"VMCI_ERROR_INVALID_RESOURCE", -1},
    {"VMCI_ERROR_INVALID_ARGS", -2},
    {"VMCI_ERROR_NO_MEM", -3},
    {"VMCI_ERROR_DATAGRAM_FAILED", -4},
    {"VMCI_ERROR_MORE_DATA", -5},
    {"VMCI_ERROR_NO_MORE_DATAGRAMS", -6},
    {"VMCI_ERROR_NO_ACCESS", -7},
    {"VMCI_ERROR_NO_HANDLE", -8},
    {"VMCI_ERROR_DUPLICATE_ENTRY", -9},
    {"VMCI_ERROR_DST_UNREACHABLE", -10},
    {"VMCI_ERROR_PAYLOAD_TOO_LARGE", -11},
    {"VMCI_ERROR_INVALID_PRIV", -12},
    {"VMCI_ERROR_GENERIC", -13},
    {"VMCI_ERROR_PAGE_ALREADY_SHARED", -14},
    {"VMCI_ERROR_CANNOT_SHARE_PAGE", -15},
    {"VMCI_ERROR_CANNOT_UNSHARE_PAGE", -16},
    {"VMCI_ERROR_NO_PROCESS", -17},
    {"VMCI_ERROR_NO_DATAGRAM", -18},
    {"VMCI_ERROR_NO_RESOURCES", -19},
    {"VMCI_ERROR_UNAVAILABLE", -20},
    {"VMCI_ERROR_NOT_FOUND", -21},
    {"VMCI_ERROR_ALREADY_EXISTS", -22},
    {"VMCI_ERROR_NOT_PAGE_ALIGNED", -23},
    {"VMCI_ERROR_INVALID_SIZE", -24},
    {"VMCI_ERROR_REGION_ALREADY_SHARED", -25},
    {"VMCI_ERROR_TIMEOUT", -26},
    {"VMCI_ERROR_DATAGRAM_INCOMPLETE", -27},
    {"VMCI_ERROR_INCORRECT_IRQL", -28},
    {"VMCI_ERROR_EVENT_UNKNOWN", -29},
    {"VMCI_ERROR_OBSOLETE", -30},
    {"VMCI_ERROR_QUEUEPAIR_MISMATCH", -31},
    {"VMCI_ERROR_QUEUEPAIR_NOTSET", -32},
    {"VMCI_ERROR_QUEUEPAIR_NOTOWNER", -33},
    {"VMCI_ERROR_QUEUEPAIR_NOTATTACHED", -34},
    {"VMCI_ERROR_QUEUEPAIR_NOSPACE", -35},
    {"VMCI_ERROR_QUEUEPAIR_NODATA", -36},
    {"VMCI_ERROR_BUSMEM_INVALIDATION", -37},
    {"VMCI_ERROR_MODULE_NOT_LOADED", -38},
    {"VMCI_ERROR_DEVICE_NOT_FOUND", -39},
    {"VMCI_ERROR_QUEUEPAIR_NOT_READY", -40},
    {"VMCI_ERROR_WOULD_BLOCK", -41},
    {"VMCI_ERROR_CLIENT_MIN", -500},
    {"VMCI_ERROR_CLIENT_MAX", -550},
    {"VMCI_SHAREDMEM_ERROR_BAD_CONTEXT", -1000},
};

TEST(StatusNames, EverySpecCodeMapsBothWays) {
  for (const auto& c : kSpecStatusCodes) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(status_name(c.value), c.name);
    ASSERT_TRUE(status_from_name(c.name).has_value());
    EXPECT_EQ(*status_from_name(c.name), c.value);
  }
  EXPECT_EQ(status_codes().size(), std::size(kSpecStatusCodes));
}

TEST(StatusNames, CHeaderValuesMatchTheSpec) {
  EXPECT_EQ(VMCI_ERROR_NO_HANDLE, -8);
  EXPECT_EQ(VMCI_ERROR_QUEUEPAIR_NODATA, -36);
  EXPECT_EQ(VMCI_ERROR_WOULD_BLOCK, -41);
  EXPECT_EQ(VMCI_SHAREDMEM_ERROR_BAD_CONTEXT, -1000);
}

TEST(StatusNames, UnknownNamesAndValues) {
  EXPECT_EQ(status_name(-42), "");
  EXPECT_FALSE(status_from_name("VMCI_ERROR_NOPE").has_value());
  EXPECT_FALSE(status_from_name("").has_value());
}

TEST(StatusNames, DescribeResult) {
  EXPECT_EQ(describe_result(-8), "VMCI_ERROR_NO_HANDLE (-8)");
  EXPECT_EQ(describe_result(0), "VMCI_SUCCESS (0)");
  EXPECT_EQ(describe_result(29), "29");  // a byte count, not a status
  EXPECT_EQ(describe_result(3), "3");
  EXPECT_EQ(describe_result(-77), "-77");
}

TEST(EventNames, BothWaysWithAndWithoutPrefix) {
  struct Case {
    const char* name;
    uint32_t value;
  } cases[] = {{"CTX_ID_UPDATE", 0},  {"CTX_REMOVED", 1},    {"QP_RESUMED", 2},
               {"QP_PEER_ATTACH", 3}, {"QP_PEER_DETACH", 4}, {"MEM_ACCESS_ON", 5},
               {"MEM_ACCESS_OFF", 6}, {"GUEST_PAUSED", 7},   {"GUEST_UNPAUSED", 8}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(event_name(c.value), c.name);
    EXPECT_EQ(event_from_name(c.name), c.value);
    EXPECT_EQ(event_from_name(std::string("VMCI_EVENT_") + c.name), c.value);
  }
  EXPECT_FALSE(event_from_name("MAX").has_value());
  EXPECT_EQ(event_name(VMCI_EVENT_MAX), "");
}

TEST(HypercallNames, BothWays) {
  EXPECT_EQ(hypercall_name(VMCI_GET_CONTEXT_ID), "VMCI_GET_CONTEXT_ID");
  EXPECT_EQ(hypercall_from_name("VMCI_QUEUEPAIR_DETACH"), 11u);
  EXPECT_EQ(hypercall_from_name("VSOCK_PACKET_HYPERVISOR_RID"), 15u);
  EXPECT_EQ(hypercall_name(16), "");
}

TEST(FlagNames, LookupAndFormat) {
  EXPECT_EQ(flag_from_name(queue_pair_flags(), "ATTACH_ONLY"), VMCI_QPFLAG_ATTACH_ONLY);
  EXPECT_EQ(flag_from_name(queue_pair_flags(), "LOCAL"), VMCI_QPFLAG_LOCAL);
  EXPECT_EQ(flag_from_name(privilege_flags(), "RESTRICTED"), VMCI_PRIVILEGE_FLAG_RESTRICTED);
  EXPECT_EQ(flag_from_name(datagram_flags(), "DELAYED_CB"), VMCI_FLAG_DG_DELAYED_CB);
  EXPECT_EQ(flag_from_name(doorbell_flags(), "DELAYED_CB"), 0x1u);
  EXPECT_FALSE(flag_from_name(queue_pair_flags(), "PINNED").has_value());
  EXPECT_EQ(flags_to_string(queue_pair_flags(), 0), "0");
  EXPECT_EQ(flags_to_string(queue_pair_flags(), 3), "ATTACH_ONLY|LOCAL");
  EXPECT_EQ(flags_to_string(queue_pair_flags(), 0x11), "ATTACH_ONLY|0x10");
}

}  // namespace
}  // namespace vmci::proto
