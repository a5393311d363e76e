#include "posix_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "vmci/proto/frame.h"

namespace vmci::guest::internal {

std::string errno_message(const std::string& what) { return what + ": " + std::strerror(errno); }

namespace {

// Why this process may not open the socket at `path`, and what to do: a
// directory above it it cannot search, or else the socket itself, which
// hostpeer opens only to its own user and those of its allow-lists.
std::string permission_advice(const std::string& path) {
  const std::string user = std::to_string(::getuid());
  std::filesystem::path dir;
  for (const auto& part : std::filesystem::path(path).parent_path()) {
    dir /= part;
    if (::access(dir.c_str(), X_OK) != 0 && errno == EACCES) {
      return "directory " + dir.string() + " does not let user " + user +
             " through; its owner must give it search permission (setfacl -m u:" + user + ":x " +
             dir.string() + "), or hostpeer must use a socket it can reach (--socket)";
    }
  }
  struct stat st {};
  const std::string owner =
      ::stat(path.c_str(), &st) == 0 ? " (user " + std::to_string(st.st_uid) + ")" : "";
  return "the hostpeer" + owner + " serving it does not admit user " + user +
         "; start it with --allow-guest-uid " + user + " to connect as a guest, or " +
         "--allow-host-uid " + user + " to connect as a guest or the host";
}

}  // namespace

int connect_unix(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) {
    *error = "the hostpeer socket path is empty: give one, or set VMCI_HOSTPEER_SOCKET";
    return -1;
  }
  if (path.size() >= sizeof addr.sun_path) {
    *error = "the hostpeer socket path '" + path + "' is " + std::to_string(path.size()) +
             " bytes; a Unix socket path may have at most " +
             std::to_string(sizeof addr.sun_path - 1) +
             ": use a shorter one (for the daemon too, --socket)";
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno_message("socket");
    return -1;
  }
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    const int saved = errno;
    *error = errno_message("cannot reach hostpeer at " + path);
    if (saved == EACCES || saved == EPERM) {
      *error += ": " + permission_advice(path);
    } else if (saved == ENOENT) {
      *error += ": no hostpeer serves this path; start one (vmci-hostpeer --socket " + path +
                "), or set VMCI_HOSTPEER_SOCKET to the socket of the one that runs";
    } else if (saved == ECONNREFUSED) {
      *error += ": the socket file is stale (the hostpeer that made it is gone); start "
                "vmci-hostpeer again (it replaces a stale socket), or set "
                "VMCI_HOSTPEER_SOCKET to the socket of the one that runs";
    }
    ::close(fd);
    return -1;
  }
  return fd;
}

namespace {

// Takes the descriptors of a received message's SCM_RIGHTS.
void take_descriptors(msghdr* msg, std::vector<int>* fds) {
  for (cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof received);
      if (fds != nullptr) {
        fds->push_back(received);
      } else {
        ::close(received);
      }
    }
  }
}

}  // namespace

bool read_exact(int fd, void* buf, size_t n, std::vector<int>* fds) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    iovec iov{p, n};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * proto::kMaxFrameDescriptors)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (got > 0 || msg.msg_controllen > 0) take_descriptors(&msg, fds);
    if (got == 0) return false;
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool write_all(int fd, const void* buf, size_t n) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    const ssize_t put = ::send(fd, p, n, MSG_NOSIGNAL);
    if (put < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

bool wait_readable(int fd, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  for (;;) {
    const int rc = ::poll(&pfd, 1, timeout_ms);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace vmci::guest::internal
