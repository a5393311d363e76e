// socket_activation.h: the listening socket systemd (or
// systemd-socket-activate, or any program following sd_listen_fds(3))
// hands vmci-hostpeer at start.
//
// The protocol: descriptors from 3 on are open, LISTEN_FDS says how many,
// and LISTEN_PID names the process they are meant for (a child that
// inherited the variables must ignore them). vmci-hostpeer serves exactly
// one socket, so it takes descriptor 3 when LISTEN_FDS is 1.
//
//   std::string error;
//   auto fd = activated_socket(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), getpid(), &error);
//   if (!fd && !error.empty()) fail(error);   // activated, but not usably
//   if (fd) options.listening_socket = *fd;
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace vmci::host::daemon {

// The first descriptor a socket-activated process receives.
inline constexpr int kFirstActivatedDescriptor = 3;

// The descriptor handed over, marked close-on-exec. Nothing with *error
// empty if the process was not socket-activated: a variable missing, or
// LISTEN_PID not `self`. Nothing with *error set if it was but cannot be
// served: LISTEN_FDS not a number, not 1, or descriptor 3 not open.
// Whether descriptor 3 is a listening Unix stream socket is the server's
// check (Server::adopt).
std::optional<int> activated_socket(const char* listen_pid, const char* listen_fds, pid_t self,
                                    std::string* error);

}  // namespace vmci::host::daemon
