// handles.h: C++ helpers for struct vmci_handle and the privilege rule.
#pragma once

#include <cstdint>
#include <string>

#include "vmci/vmci_defs.h"

namespace vmci::proto {

inline constexpr bool same_handle(const vmci_handle& a, const vmci_handle& b) {
  return a.context == b.context && a.resource == b.resource;
}

inline constexpr bool is_invalid(const vmci_handle& h) {
  return h.context == VMCI_INVALID_ID && h.resource == VMCI_INVALID_ID;
}

// A 64-bit key for maps: context in the high half.
inline constexpr uint64_t handle_key(const vmci_handle& h) {
  return (uint64_t{h.context} << 32) | h.resource;
}
inline constexpr vmci_handle handle_from_key(uint64_t key) {
  return vmci_handle{static_cast<vmci_id>(key >> 32), static_cast<vmci_id>(key)};
}

// "(2:1024)", with "*" for VMCI_INVALID_ID.
std::string to_string(const vmci_handle& h);

// True when two endpoints with these privilege flags may not interact:
// one is RESTRICTED and the other is not TRUSTED (spec §3.7).
inline constexpr bool deny_interaction(uint32_t a, uint32_t b) {
  return ((a & VMCI_PRIVILEGE_FLAG_RESTRICTED) && !(b & VMCI_PRIVILEGE_FLAG_TRUSTED)) ||
         ((b & VMCI_PRIVILEGE_FLAG_RESTRICTED) && !(a & VMCI_PRIVILEGE_FLAG_TRUSTED));
}

}  // namespace vmci::proto
