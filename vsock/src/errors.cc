#include "vmci/vsock/errors.h"

#include <cerrno>

#include "vmci/vmci_defs.h"

namespace vmci::vsock {

int errno_of_vmci(int64_t status) {
  if (status >= VMCI_SUCCESS) return 0;
  switch (status) {
    case VMCI_ERROR_NO_MEM: return ENOMEM;
    case VMCI_ERROR_DUPLICATE_ENTRY:
    case VMCI_ERROR_ALREADY_EXISTS: return EADDRINUSE;
    case VMCI_ERROR_NO_ACCESS: return EPERM;
    case VMCI_ERROR_NO_RESOURCES: return ENOBUFS;
    case VMCI_ERROR_INVALID_RESOURCE: return EHOSTUNREACH;
    default: return EINVAL;
  }
}

}  // namespace vmci::vsock
