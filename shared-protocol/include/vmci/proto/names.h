// names.h: VMCI's names for its numbers, both ways, for logs, reports and
// scenario files.
//
//   status_name(-8)                      == "VMCI_ERROR_NO_HANDLE"
//   status_from_name("VMCI_ERROR_NO_HANDLE") == -8
//   describe_result(-8)                  == "VMCI_ERROR_NO_HANDLE (-8)"
//   event_from_name("CTX_REMOVED")       == VMCI_EVENT_CTX_REMOVED
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmci::proto {

struct NamedValue {
  std::string_view name;
  int64_t value;
};

// Every status code of the spec (§2), in the order of the spec's table.
std::span<const NamedValue> status_codes();
// The status name of `code`, or "" if `code` is not a status code.
std::string_view status_name(int64_t code);
std::optional<int64_t> status_from_name(std::string_view name);
// "VMCI_ERROR_NO_HANDLE (-8)" for a status code, the number itself otherwise.
std::string describe_result(int64_t result);

// Event types, named without their prefix ("CTX_REMOVED"); lookups also
// accept the full name ("VMCI_EVENT_CTX_REMOVED").
std::span<const NamedValue> event_types();
std::string_view event_name(uint32_t event);
std::optional<uint32_t> event_from_name(std::string_view name);

// Hypervisor resource ids ("VMCI_GET_CONTEXT_ID").
std::span<const NamedValue> hypercalls();
std::string_view hypercall_name(uint32_t resource);
std::optional<uint32_t> hypercall_from_name(std::string_view name);

// Flag sets, named without their prefix: "ATTACH_ONLY", "RESTRICTED", "DELAYED_CB".
std::span<const NamedValue> queue_pair_flags();
std::span<const NamedValue> privilege_flags();
std::span<const NamedValue> datagram_flags();
std::span<const NamedValue> doorbell_flags();
std::optional<uint32_t> flag_from_name(std::span<const NamedValue> table, std::string_view name);
// "ATTACH_ONLY|LOCAL", or "0" when none; unknown bits as hex.
std::string flags_to_string(std::span<const NamedValue> table, uint32_t flags);

}  // namespace vmci::proto
