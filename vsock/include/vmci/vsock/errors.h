// errors.h: VMCI status codes as the errno values vSockets reports for
// them (Linux's vmci_transport_error_to_vsock_error).
#pragma once

#include <system_error>

namespace vmci::vsock {

// NO_MEM -> ENOMEM; DUPLICATE_ENTRY, ALREADY_EXISTS -> EADDRINUSE;
// NO_ACCESS -> EPERM; NO_RESOURCES -> ENOBUFS; INVALID_RESOURCE ->
// EHOSTUNREACH; any other error -> EINVAL. Success (>= 0) -> 0.
int errno_of_vmci(int64_t status);

inline std::error_code make_error(int errno_value) {
  return std::error_code(errno_value, std::generic_category());
}

}  // namespace vmci::vsock
