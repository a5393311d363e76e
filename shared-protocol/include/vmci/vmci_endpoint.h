/*
 * vmci_endpoint.h: one endpoint of VMCI, as C code holds it. Valid C99 and
 * C++. An endpoint comes from the library that makes it (the guest
 * library's vmci_hostpeer_endpoint()) and goes to libraries built over any
 * endpoint (vSockets' vmci_vsock_open()); each holder releases its
 * reference with vmci_endpoint_release(), and the endpoint lives while any
 * reference does.
 */
#ifndef VMCI_VMCI_ENDPOINT_H
#define VMCI_VMCI_ENDPOINT_H

#ifdef __cplusplus
#include <memory>

#include "vmci/endpoint.h"

/* A reference to a vmci::Endpoint (C++ code may look inside). */
struct vmci_endpoint {
	std::shared_ptr<vmci::Endpoint> endpoint;
};

extern "C" {
#else
struct vmci_endpoint;
#endif

/* Another reference to the same endpoint; NULL for NULL. */
struct vmci_endpoint *vmci_endpoint_ref(const struct vmci_endpoint *endpoint);
/* Drops a reference; NULL is ignored. */
void vmci_endpoint_release(struct vmci_endpoint *endpoint);

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_ENDPOINT_H */
