#include "vmci/proto/handles.h"

namespace vmci::proto {
namespace {

std::string id_to_string(vmci_id id) {
  return id == VMCI_INVALID_ID ? std::string("*") : std::to_string(id);
}

}  // namespace

std::string to_string(const vmci_handle& h) {
  return "(" + id_to_string(h.context) + ":" + id_to_string(h.resource) + ")";
}

}  // namespace vmci::proto
