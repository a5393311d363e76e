#include "vmci/proto/names.h"

#include <array>
#include <cstdio>

#include "vmci/vmci_call_defs.h"

namespace vmci::proto {
namespace {

#define VMCI_NAMED(x) \
  NamedValue { #x, x }

constexpr std::array kStatusCodes{
    VMCI_NAMED(VMCI_SUCCESS_QUEUEPAIR_ATTACH),
    VMCI_NAMED(VMCI_SUCCESS_QUEUEPAIR_CREATE),
    VMCI_NAMED(VMCI_SUCCESS_LAST_DETACH),
    VMCI_NAMED(VMCI_SUCCESS_ACCESS_GRANTED),
    VMCI_NAMED(VMCI_SUCCESS_ENTRY_DEAD),
    VMCI_NAMED(VMCI_SUCCESS),
    VMCI_NAMED(VMCI_ERROR_INVALID_RESOURCE),
    VMCI_NAMED(VMCI_ERROR_INVALID_ARGS),
    VMCI_NAMED(VMCI_ERROR_NO_MEM),
    VMCI_NAMED(VMCI_ERROR_DATAGRAM_FAILED),
    VMCI_NAMED(VMCI_ERROR_MORE_DATA),
    VMCI_NAMED(VMCI_ERROR_NO_MORE_DATAGRAMS),
    VMCI_NAMED(VMCI_ERROR_NO_ACCESS),
    VMCI_NAMED(VMCI_ERROR_NO_HANDLE),
    VMCI_NAMED(VMCI_ERROR_DUPLICATE_ENTRY),
    VMCI_NAMED(VMCI_ERROR_DST_UNREACHABLE),
    VMCI_NAMED(VMCI_ERROR_PAYLOAD_TOO_LARGE),
    VMCI_NAMED(VMCI_ERROR_INVALID_PRIV),
    VMCI_NAMED(VMCI_ERROR_GENERIC),
    VMCI_NAMED(VMCI_ERROR_PAGE_ALREADY_SHARED),
    VMCI_NAMED(VMCI_ERROR_CANNOT_SHARE_PAGE),
    VMCI_NAMED(VMCI_ERROR_CANNOT_UNSHARE_PAGE),
    VMCI_NAMED(VMCI_ERROR_NO_PROCESS),
    VMCI_NAMED(VMCI_ERROR_NO_DATAGRAM),
    VMCI_NAMED(VMCI_ERROR_NO_RESOURCES),
    VMCI_NAMED(VMCI_ERROR_UNAVAILABLE),
    VMCI_NAMED(VMCI_ERROR_NOT_FOUND),
    VMCI_NAMED(VMCI_ERROR_ALREADY_EXISTS),
    VMCI_NAMED(VMCI_ERROR_NOT_PAGE_ALIGNED),
    VMCI_NAMED(VMCI_ERROR_INVALID_SIZE),
    VMCI_NAMED(VMCI_ERROR_REGION_ALREADY_SHARED),
    VMCI_NAMED(VMCI_ERROR_TIMEOUT),
    VMCI_NAMED(VMCI_ERROR_DATAGRAM_INCOMPLETE),
    VMCI_NAMED(VMCI_ERROR_INCORRECT_IRQL),
    VMCI_NAMED(VMCI_ERROR_EVENT_UNKNOWN),
    VMCI_NAMED(VMCI_ERROR_OBSOLETE),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_MISMATCH),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NOTSET),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NOTOWNER),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NOTATTACHED),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NOSPACE),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NODATA),
    VMCI_NAMED(VMCI_ERROR_BUSMEM_INVALIDATION),
    VMCI_NAMED(VMCI_ERROR_MODULE_NOT_LOADED),
    VMCI_NAMED(VMCI_ERROR_DEVICE_NOT_FOUND),
    VMCI_NAMED(VMCI_ERROR_QUEUEPAIR_NOT_READY),
    VMCI_NAMED(VMCI_ERROR_WOULD_BLOCK),
    VMCI_NAMED(VMCI_ERROR_CLIENT_MIN),
    VMCI_NAMED(VMCI_ERROR_CLIENT_MAX),
    VMCI_NAMED(VMCI_SHAREDMEM_ERROR_BAD_CONTEXT),
};

constexpr std::array kEventTypes{
    NamedValue{"CTX_ID_UPDATE", VMCI_EVENT_CTX_ID_UPDATE},
    NamedValue{"CTX_REMOVED", VMCI_EVENT_CTX_REMOVED},
    NamedValue{"QP_RESUMED", VMCI_EVENT_QP_RESUMED},
    NamedValue{"QP_PEER_ATTACH", VMCI_EVENT_QP_PEER_ATTACH},
    NamedValue{"QP_PEER_DETACH", VMCI_EVENT_QP_PEER_DETACH},
    NamedValue{"MEM_ACCESS_ON", VMCI_EVENT_MEM_ACCESS_ON},
    NamedValue{"MEM_ACCESS_OFF", VMCI_EVENT_MEM_ACCESS_OFF},
    NamedValue{"GUEST_PAUSED", VMCI_EVENT_GUEST_PAUSED},
    NamedValue{"GUEST_UNPAUSED", VMCI_EVENT_GUEST_UNPAUSED},
};

constexpr std::array kHypercalls{
    VMCI_NAMED(VMCI_RESOURCES_QUERY),      VMCI_NAMED(VMCI_GET_CONTEXT_ID),
    VMCI_NAMED(VMCI_SET_NOTIFY_BITMAP),    VMCI_NAMED(VMCI_DOORBELL_LINK),
    VMCI_NAMED(VMCI_DOORBELL_UNLINK),      VMCI_NAMED(VMCI_DOORBELL_NOTIFY),
    VMCI_NAMED(VMCI_DATAGRAM_REQUEST_MAP), VMCI_NAMED(VMCI_DATAGRAM_REMOVE_MAP),
    VMCI_NAMED(VMCI_EVENT_SUBSCRIBE),      VMCI_NAMED(VMCI_EVENT_UNSUBSCRIBE),
    VMCI_NAMED(VMCI_QUEUEPAIR_ALLOC),      VMCI_NAMED(VMCI_QUEUEPAIR_DETACH),
    VMCI_NAMED(VMCI_VSOCK_VMX_LOOKUP),     VMCI_NAMED(VMCI_HGFS_TRANSPORT),
    VMCI_NAMED(VMCI_UNITY_PBRPC_REGISTER), VMCI_NAMED(VSOCK_PACKET_HYPERVISOR_RID),
};

constexpr std::array kQueuePairFlags{
    NamedValue{"ATTACH_ONLY", VMCI_QPFLAG_ATTACH_ONLY},
    NamedValue{"LOCAL", VMCI_QPFLAG_LOCAL},
    NamedValue{"NONBLOCK", VMCI_QPFLAG_NONBLOCK},
};

constexpr std::array kPrivilegeFlags{
    NamedValue{"RESTRICTED", VMCI_PRIVILEGE_FLAG_RESTRICTED},
    NamedValue{"TRUSTED", VMCI_PRIVILEGE_FLAG_TRUSTED},
};

constexpr std::array kDatagramFlags{
    NamedValue{"WELLKNOWN_DG_HND", VMCI_FLAG_WELLKNOWN_DG_HND},
    NamedValue{"ANYCID_DG_HND", VMCI_FLAG_ANYCID_DG_HND},
    NamedValue{"DELAYED_CB", VMCI_FLAG_DG_DELAYED_CB},
};

// vmci_doorbell_create's only flag, VMCI_FLAG_DELAYED_CB (kernel API v2).
constexpr std::array kDoorbellFlags{
    NamedValue{"DELAYED_CB", 0x1},
};

#undef VMCI_NAMED

std::optional<int64_t> find_value(std::span<const NamedValue> table, std::string_view name) {
  for (const auto& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

std::string_view find_name(std::span<const NamedValue> table, int64_t value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return {};
}

std::string_view strip_prefix(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  return name;
}

}  // namespace

std::span<const NamedValue> status_codes() { return kStatusCodes; }

std::string_view status_name(int64_t code) { return find_name(kStatusCodes, code); }

std::optional<int64_t> status_from_name(std::string_view name) {
  return find_value(kStatusCodes, name);
}

std::string describe_result(int64_t result) {
  const std::string_view name = status_name(result);
  if (name.empty() || result > 0) return std::to_string(result);
  return std::string(name) + " (" + std::to_string(result) + ")";
}

std::span<const NamedValue> event_types() { return kEventTypes; }

std::string_view event_name(uint32_t event) { return find_name(kEventTypes, event); }

std::optional<uint32_t> event_from_name(std::string_view name) {
  auto value = find_value(kEventTypes, strip_prefix(name, "VMCI_EVENT_"));
  if (!value) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

std::span<const NamedValue> hypercalls() { return kHypercalls; }

std::string_view hypercall_name(uint32_t resource) { return find_name(kHypercalls, resource); }

std::optional<uint32_t> hypercall_from_name(std::string_view name) {
  auto value = find_value(kHypercalls, name);
  if (!value) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

std::span<const NamedValue> queue_pair_flags() { return kQueuePairFlags; }
std::span<const NamedValue> privilege_flags() { return kPrivilegeFlags; }
std::span<const NamedValue> datagram_flags() { return kDatagramFlags; }
std::span<const NamedValue> doorbell_flags() { return kDoorbellFlags; }

std::optional<uint32_t> flag_from_name(std::span<const NamedValue> table, std::string_view name) {
  auto value = find_value(table, name);
  if (!value) return std::nullopt;
  return static_cast<uint32_t>(*value);
}

std::string flags_to_string(std::span<const NamedValue> table, uint32_t flags) {
  if (flags == 0) return "0";
  std::string out;
  for (const auto& entry : table) {
    const auto bit = static_cast<uint32_t>(entry.value);
    if (flags & bit) {
      if (!out.empty()) out += '|';
      out += entry.name;
      flags &= ~bit;
    }
  }
  if (flags != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", flags);
    if (!out.empty()) out += '|';
    out += hex;
  }
  return out;
}

}  // namespace vmci::proto
