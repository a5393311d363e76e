// seccomp_filter.h: the filter vmci-vsock-run puts on the program (and so
// on everything it starts): the kernel's own AF_VSOCK is out of reach, so a
// call the preload library did not take fails instead of leaving the
// machine. socket() and socketpair() of AF_VSOCK fail with EAFNOSUPPORT;
// io_uring_setup fails with ENOSYS (io_uring could open sockets past the
// filter; programs fall back to ordinary calls); on x86-64, 32-bit
// programs' socketcall() (whose arguments a filter cannot read) fails with
// EAFNOSUPPORT, while their direct socket() is checked as the native one.
#pragma once

#include <string>

namespace vmci::vsock_run {

// Installs the filter on the calling thread (no_new_privs first, as an
// unprivileged process must); threads and processes started afterwards
// inherit it. False with *error set if the kernel refuses it.
bool install_vsock_filter(std::string* error);

}  // namespace vmci::vsock_run
