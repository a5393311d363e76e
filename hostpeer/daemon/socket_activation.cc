#include "daemon/socket_activation.h"

#include <fcntl.h>

#include <charconv>
#include <cstring>

namespace vmci::host::daemon {

namespace {

// The decimal number that is all of `text`, if it is one.
std::optional<long long> whole_number(const char* text) {
  long long value = 0;
  const char* end = text + std::strlen(text);
  const auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end || ptr == text) return std::nullopt;
  return value;
}

}  // namespace

std::optional<int> activated_socket(const char* listen_pid, const char* listen_fds, pid_t self,
                                    std::string* error) {
  if (listen_pid == nullptr || listen_fds == nullptr) return std::nullopt;
  const auto pid = whole_number(listen_pid);
  if (!pid || *pid != self) return std::nullopt;  // meant for another process
  const auto count = whole_number(listen_fds);
  if (!count) {
    *error = std::string("LISTEN_FDS=") + listen_fds + " is not a number of descriptors";
    return std::nullopt;
  }
  if (*count != 1) {
    *error = "socket activation handed " + std::to_string(*count) +
             " sockets; vmci-hostpeer serves exactly one (one ListenStream= in its .socket unit)";
    return std::nullopt;
  }
  const int flags = ::fcntl(kFirstActivatedDescriptor, F_GETFD);
  if (flags < 0) {
    *error = "LISTEN_FDS=1, but descriptor 3 is not open";
    return std::nullopt;
  }
  ::fcntl(kFirstActivatedDescriptor, F_SETFD, flags | FD_CLOEXEC);
  return kFirstActivatedDescriptor;
}

}  // namespace vmci::host::daemon
