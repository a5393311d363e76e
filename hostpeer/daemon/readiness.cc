#include "daemon/readiness.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmci::host::daemon {

std::optional<ReadyDescriptor> ReadyDescriptor::adopt(int fd, std::string* error) {
  const int flags = fd < 0 ? -1 : ::fcntl(fd, F_GETFD);
  if (flags < 0) {
    *error = "--ready-fd " + std::to_string(fd) +
             ": not an open descriptor (open it in the starting shell, e.g. "
             "'vmci-hostpeer --ready-fd 3 3>pipe')";
    return std::nullopt;
  }
  ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  return ReadyDescriptor(fd);
}

ReadyDescriptor::ReadyDescriptor(ReadyDescriptor&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

ReadyDescriptor& ReadyDescriptor::operator=(ReadyDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

ReadyDescriptor::~ReadyDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

bool ReadyDescriptor::announce(const std::string& socket_path, std::string* error) {
  if (fd_ < 0) return true;
  const std::string line = socket_path + "\n";
  size_t done = 0;
  bool written = true;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "--ready-fd " + std::to_string(fd_) + ": cannot write: " + std::strerror(errno);
      written = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd_);
  fd_ = -1;
  return written;
}

std::optional<SystemdNotifier> SystemdNotifier::from_environment(const char* notify_socket,
                                                                 std::string* error) {
  if (notify_socket == nullptr || *notify_socket == '\0') return std::nullopt;
  const std::string name = notify_socket;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (name[0] != '/' && name[0] != '@') {
    *error = "NOTIFY_SOCKET=" + name +
             ": not a Unix socket (an absolute path or @name); not notifying systemd";
    return std::nullopt;
  }
  if (name.size() > sizeof address.sun_path - (name[0] == '@' ? 0 : 1) || name.size() < 2) {
    *error = "NOTIFY_SOCKET=" + name + ": not a usable Unix socket name (at most " +
             std::to_string(sizeof address.sun_path - 1) + " bytes); not notifying systemd";
    return std::nullopt;
  }
  std::memcpy(address.sun_path, name.data(), name.size());
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  if (name[0] == '@') {
    address.sun_path[0] = '\0';  // abstract: the name is exactly these bytes
  } else {
    length += 1;  // the path's terminating NUL
  }
  return SystemdNotifier(name, address, length);
}

bool SystemdNotifier::notify(std::string_view state, std::string* error) const {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("cannot notify systemd: socket: ") + std::strerror(errno);
    return false;
  }
  ssize_t sent;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&address_), length_);
  } while (sent < 0 && errno == EINTR);
  const int saved = errno;
  ::close(fd);
  if (sent < 0 || static_cast<size_t>(sent) != state.size()) {
    *error = "cannot notify systemd at NOTIFY_SOCKET=" + name_ + ": " +
             (sent < 0 ? std::strerror(saved) : "short send");
    return false;
  }
  return true;
}

}  // namespace vmci::host::daemon
