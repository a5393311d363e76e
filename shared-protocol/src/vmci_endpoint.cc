#include "vmci/vmci_endpoint.h"

extern "C" {

struct vmci_endpoint* vmci_endpoint_ref(const struct vmci_endpoint* endpoint) {
  return endpoint == nullptr ? nullptr : new vmci_endpoint{endpoint->endpoint};
}

void vmci_endpoint_release(struct vmci_endpoint* endpoint) { delete endpoint; }

}  // extern "C"
