#include "vmci/proto/handles.h"

namespace vmci::proto {
namespace {

std::string id_to_string(vmci_id id) {
  return id == VMCI_INVALID_ID ? std::string("*") : std::to_string(id);
}

}  // namespace

std::string to_string(const vmci_handle& h) {
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, falsely) on
  // "(" + std::string.
  std::string out = "(";
  out += id_to_string(h.context);
  out += ':';
  out += id_to_string(h.resource);
  out += ')';
  return out;
}

}  // namespace vmci::proto
