// readiness.h: how vmci-hostpeer tells whoever started it that its socket
// listens, so that nobody has to poll for it.
//
// Two ways, both optional and independent:
// - ReadyDescriptor (--ready-fd N): the socket's path and a newline are
//   written to descriptor N, which is then closed. A daemon that fails to
//   start closes N without writing, so the reader sees end of file.
// - SystemdNotifier (NOTIFY_SOCKET, for a Type=notify unit): "READY=1" and
//   later "STOPPING=1" are sent as datagrams to the Unix datagram socket
//   the variable names (a path, or "@name" for an abstract socket), as
//   sd_notify(3) does, without libsystemd.
//
//   std::string error;
//   auto ready = ReadyDescriptor::adopt(5, &error);     // fails if 5 is not open
//   auto notifier = SystemdNotifier::from_environment(getenv("NOTIFY_SOCKET"), &error);
//   ... start ...
//   ready->announce(socket_path, &error);
//   notifier->notify("READY=1", &error);
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <optional>
#include <string>
#include <string_view>

namespace vmci::host::daemon {

class ReadyDescriptor {
 public:
  // Takes ownership of `fd` and marks it close-on-exec. Nothing, with
  // *error set, if `fd` is negative or not an open descriptor.
  static std::optional<ReadyDescriptor> adopt(int fd, std::string* error);
  ReadyDescriptor(ReadyDescriptor&& other) noexcept;
  ReadyDescriptor& operator=(ReadyDescriptor&& other) noexcept;
  ReadyDescriptor(const ReadyDescriptor&) = delete;
  ReadyDescriptor& operator=(const ReadyDescriptor&) = delete;
  ~ReadyDescriptor();  // closes the descriptor if announce() did not

  // Writes `socket_path` and a newline (retrying EINTR and short writes),
  // then closes the descriptor. False, with *error set, if the write fails
  // (the reader went away, say); the descriptor is closed either way. Only
  // the first call writes.
  bool announce(const std::string& socket_path, std::string* error);

 private:
  explicit ReadyDescriptor(int fd) : fd_(fd) {}
  int fd_;
};

class SystemdNotifier {
 public:
  // Nothing, and *error left empty, if `notify_socket` is null or empty
  // (not started by systemd). Nothing, with *error set, if it cannot name
  // a Unix socket: neither an absolute path nor "@name", or longer than
  // sun_path holds.
  static std::optional<SystemdNotifier> from_environment(const char* notify_socket,
                                                         std::string* error);

  // Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", lines joined by
  // newlines) as one datagram. False, with *error set, if it cannot be sent.
  bool notify(std::string_view state, std::string* error) const;
  const std::string& socket_name() const { return name_; }

 private:
  SystemdNotifier(std::string name, const sockaddr_un& address, socklen_t length)
      : name_(std::move(name)), address_(address), length_(length) {}
  std::string name_;
  sockaddr_un address_;
  socklen_t length_;
};

}  // namespace vmci::host::daemon
