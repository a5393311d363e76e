// handle.h: struct vmci_handle as a C++ value: equality, an order and a
// hash, so handles can be compared and used as keys of std::map and
// std::unordered_map directly.
//
//   std::unordered_map<vmci_handle, Session> sessions;
//   if (dg->src == peer) ...
//   std::set<vmci_handle> seen;    // ordered by context, then resource
#pragma once

#include <compare>
#include <cstddef>
#include <functional>

#include "vmci/vmci_defs.h"

// In the global namespace, as struct vmci_handle is, so that lookup finds
// them for any code that compares handles.
inline constexpr bool operator==(const vmci_handle& a, const vmci_handle& b) {
  return a.context == b.context && a.resource == b.resource;
}
// By context, then by resource.
inline constexpr std::strong_ordering operator<=>(const vmci_handle& a, const vmci_handle& b) {
  if (const auto c = a.context <=> b.context; c != 0) return c;
  return a.resource <=> b.resource;
}

template <>
struct std::hash<vmci_handle> {
  size_t operator()(const vmci_handle& h) const noexcept {
    return std::hash<uint64_t>{}((uint64_t{h.context} << 32) | h.resource);
  }
};
