// ivshmem_server.cc: the greeting, one client at a time, the eventfds.
#include "ivshmem_server.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmci::pcidev {
namespace {

constexpr int64_t kProtocolVersion = 0;
constexpr int64_t kClientId = 0;
constexpr int64_t kSharedMemoryMessage = -1;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool fill_address(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

// Whether something accepts connections at path (a live server).
bool someone_listens(const sockaddr_un& addr) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

// One message: the little-endian int64, with fd (if >= 0) attached.
bool send_message(int socket, int64_t value, int fd) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i));
  iovec iov{bytes, sizeof(bytes)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    // Non-blocking: a client that does not read is not waited for (the
    // greeting is a few hundred bytes; a socket buffer holds far more).
    ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof(bytes));
  }
}

}  // namespace

IvshmemServer::IvshmemServer(std::string path, IvshmemServerOptions options,
                             std::shared_ptr<spdlog::logger> log)
    : path_(std::move(path)), options_(options), log_(std::move(log)) {}

std::unique_ptr<IvshmemServer> IvshmemServer::listen(const std::string& path,
                                                     IvshmemServerOptions options,
                                                     std::shared_ptr<spdlog::logger> log,
                                                     std::string* error) {
  if (options.vectors == 0 || options.vectors > 1024) {
    *error = "ivshmem: vectors must be 1..1024";
    return nullptr;
  }
  if (options.shm_size < 4096 || (options.shm_size & (options.shm_size - 1)) != 0) {
    *error = "ivshmem: the shared memory size must be a power of two, at least 4096";
    return nullptr;
  }
  sockaddr_un addr;
  if (!fill_address(path, &addr)) {
    *error = "ivshmem: socket path empty or too long: " + path;
    return nullptr;
  }
  std::unique_ptr<IvshmemServer> server(new IvshmemServer(path, options, std::move(log)));

  // Sealed at its size: QEMU maps it into the guest's address space, so the
  // proxy's SYNC_SYSMEM passes it on as guest memory, and hostpeer takes a
  // guest memory map only from files that cannot shrink.
  server->shm_fd_ = UniqueFd(::memfd_create("vmci-ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!server->shm_fd_ ||
      ::ftruncate(server->shm_fd_.get(), static_cast<off_t>(options.shm_size)) != 0 ||
      ::fcntl(server->shm_fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    *error = errno_text("ivshmem: shared memory");
    return nullptr;
  }
  void* map = ::mmap(nullptr, options.shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     server->shm_fd_.get(), 0);
  if (map == MAP_FAILED) {
    *error = errno_text("ivshmem: mmap of the shared memory");
    return nullptr;
  }
  server->shm_ = static_cast<uint8_t*>(map);

  server->stop_event_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->stop_event_) {
    *error = errno_text("ivshmem: eventfd");
    return nullptr;
  }

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = "ivshmem: " + path + " exists and is not a socket";
      return nullptr;
    }
    if (someone_listens(addr)) {
      *error = "ivshmem: another server is live at " + path;
      return nullptr;
    }
    ::unlink(path.c_str());
  }
  server->listener_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!server->listener_) {
    *error = errno_text("ivshmem: socket");
    return nullptr;
  }
  // 0600 from the start: bind under a umask that keeps everyone else out.
  mode_t old_umask = ::umask(0177);
  int bound = ::bind(server->listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    errno = bind_errno;
    *error = errno_text(("ivshmem: bind " + path).c_str());
    return nullptr;
  }
  server->bound_ = true;  // from here on, the destructor removes the socket
  if (::listen(server->listener_.get(), 4) != 0) {
    *error = errno_text("ivshmem: listen");
    return nullptr;
  }
  return server;
}

IvshmemServer::~IvshmemServer() {
  if (bound_) ::unlink(path_.c_str());
  if (shm_) ::munmap(shm_, options_.shm_size);
}

void IvshmemServer::stop() {
  uint64_t one = 1;
  ssize_t n = ::write(stop_event_.get(), &one, sizeof(one));
  (void)n;  // a full counter already means "stop"
}

bool IvshmemServer::connected() const {
  std::lock_guard lock(mutex_);
  return !eventfds_.empty();
}

bool IvshmemServer::wait_for_client(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return greeted_cv_.wait_for(lock, timeout, [this] { return !eventfds_.empty(); });
}

bool IvshmemServer::notify(uint32_t vector) {
  std::lock_guard lock(mutex_);
  if (vector >= eventfds_.size()) return false;
  uint64_t one = 1;
  for (;;) {
    ssize_t n = ::write(eventfds_[vector].get(), &one, sizeof(one));
    if (n == sizeof(one)) return true;
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: the counter is full, so QEMU has stopped reading; the
    // interrupt it would raise is already owed.
    log_->warn("ivshmem: vector {} eventfd write: {}", vector, std::strerror(errno));
    return false;
  }
}

bool IvshmemServer::greet(int client) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::geteuid()) {
    log_->warn("ivshmem: refused a client of uid {} (only uid {} may connect)", cred.uid, ::geteuid());
    return false;
  }
  std::vector<UniqueFd> fresh;
  for (uint32_t k = 0; k < options_.vectors; ++k) {
    fresh.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fresh.back()) {
      log_->error("ivshmem: {}", errno_text("eventfd"));
      return false;
    }
  }
  std::memset(shm_, 0, options_.shm_size);  // a new QEMU is a new guest
  bool ok = send_message(client, kProtocolVersion, -1) && send_message(client, kClientId, -1) &&
            send_message(client, kSharedMemoryMessage, shm_fd_.get());
  for (uint32_t k = 0; ok && k < options_.vectors; ++k) {
    ok = send_message(client, kClientId, fresh[k].get());
  }
  if (!ok) {
    log_->warn("ivshmem: greeting the client failed: {}", std::strerror(errno));
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    eventfds_ = std::move(fresh);
  }
  greeted_.fetch_add(1);
  greeted_cv_.notify_all();
  log_->info("ivshmem: client (pid {}) greeted with {} vectors", cred.pid, options_.vectors);
  return true;
}

void IvshmemServer::drop_client(UniqueFd* client, const char* why) {
  log_->info("ivshmem: client dropped: {}", why);
  client->reset();
  std::lock_guard lock(mutex_);
  eventfds_.clear();
}

void IvshmemServer::serve() {
  UniqueFd client;
  for (;;) {
    pollfd fds[3] = {{stop_event_.get(), POLLIN, 0},
                     {listener_.get(), POLLIN, 0},
                     {client.get(), POLLIN, 0}};  // fd -1 is ignored by poll
    int n = ::poll(fds, 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log_->error("ivshmem: {}", errno_text("poll"));
      break;
    }
    if (fds[0].revents) break;
    if (fds[2].revents) {
      char byte;
      ssize_t got = ::recv(client.get(), &byte, 1, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        drop_client(&client, "hung up");
      } else if (got > 0) {
        drop_client(&client, "it sent bytes (the protocol is server to client only)");
      }
    }
    if (fds[1].revents) {
      UniqueFd incoming(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!incoming) continue;  // EAGAIN, ECONNABORTED: nothing to do
      if (client) {
        log_->warn("ivshmem: a second client was turned away (one QEMU at a time)");
        continue;  // closed by incoming's destructor
      }
      if (greet(incoming.get())) client = std::move(incoming);
    }
  }
  if (client) drop_client(&client, "server stopped");
}

}  // namespace vmci::pcidev
