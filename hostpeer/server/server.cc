#include "server/server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "server/socket_access.h"

namespace vmci::host {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

// What is behind an existing socket file, found by connecting to it.
struct SocketProbe {
  enum class Verdict { kLive, kLeftover, kUnknown } verdict;
  std::string detail;  // kLive: who serves it; kUnknown: why it cannot be told
};

SocketProbe probe_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return {SocketProbe::Verdict::kUnknown, std::strerror(errno)};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int saved = errno;
  SocketProbe probe{SocketProbe::Verdict::kUnknown, ""};
  if (rc == 0 || saved == EAGAIN) {  // EAGAIN: accepted into a full backlog, so live
    probe.verdict = SocketProbe::Verdict::kLive;
    ucred peer{};
    socklen_t size = sizeof peer;
    if (rc == 0 && ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) == 0 && peer.pid > 0)
      probe.detail = "process " + std::to_string(peer.pid) + ", user " + std::to_string(peer.uid);
  } else if (saved == ECONNREFUSED) {
    probe.verdict = SocketProbe::Verdict::kLeftover;  // a bound file nobody listens on
  } else {
    probe.detail = std::strerror(saved);
  }
  ::close(fd);
  return probe;
}

std::string random_suffix() {
  std::random_device rd;
  const uint64_t value = (uint64_t{rd()} << 32) | rd();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

size_t descriptor_limit() {
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<size_t>(files.rlim_cur);
}

}  // namespace

Server::Server(asio::io_context& io, LockedCore& core, PeerPolicy policy,
               std::chrono::milliseconds hello_deadline, std::shared_ptr<spdlog::logger> log)
    : core_(core),
      policy_(std::move(policy)),
      hello_deadline_(hello_deadline),
      budget_(DescriptorBudget::for_descriptor_limit(descriptor_limit())),
      log_(std::move(log)),
      acceptor_(io),
      retry_(io) {}

bool Server::listen(const std::string& path, std::string* error) {
  if (path.empty()) {
    *error = "no socket path given";
    return false;
  }
  if (path.size() > kMaxSocketPath) {
    *error = "socket path " + path + " is " + std::to_string(path.size()) +
             " bytes long; a Unix socket path holds at most " + std::to_string(kMaxSocketPath) +
             ": choose a shorter one (in a directory nearer the root, such as "
             "$XDG_RUNTIME_DIR or /tmp)";
    return false;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = path + " exists and is not a socket; hostpeer will not replace it: remove it, "
               "or choose another socket path";
      return false;
    }
    const SocketProbe probe = probe_socket(path);
    switch (probe.verdict) {
      case SocketProbe::Verdict::kLive:
        *error = path + " is being served by a running hostpeer or another program" +
                 (probe.detail.empty() ? std::string() : " (" + probe.detail + ")") +
                 ": stop it first, or choose another socket path";
        return false;
      case SocketProbe::Verdict::kUnknown:
        *error = path + " is a socket of user " + std::to_string(st.st_uid) +
                 " that cannot be probed (" + probe.detail +
                 "), so whether a hostpeer serves it is unknown and it is left alone: choose "
                 "another socket path, or have its owner remove it";
        return false;
      case SocketProbe::Verdict::kLeftover:
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          *error = path + " is a stale socket (nobody serves it) that cannot be removed: " +
                   std::strerror(errno) + "; remove it by hand, or choose another socket path";
          return false;
        }
        log_->warn("removed {}, a stale socket nobody served (left by a hostpeer that did not "
                   "stop cleanly)",
                   path);
        break;
    }
  }
  // Bind under a name nobody knows, make it 0600 and let the allowed users
  // in (socket_access.h), then move it into place: nobody can connect
  // before its permissions are set.
  const size_t slash = path.rfind('/');
  const std::string temp = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) +
                           ".vmci" + random_suffix().substr(0, 8);
  if (temp.size() > kMaxSocketPath) {
    *error = "socket path " + path + ": its directory is too long for the temporary name " +
             "hostpeer binds first (" + temp + ", over " + std::to_string(kMaxSocketPath) +
             " bytes): choose a directory nearer the root";
    return false;
  }
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  if (!ec) acceptor_.bind(stream::endpoint(temp), ec);
  if (ec) {
    *error = "cannot create socket " + path + ": " + ec.message();
    return false;
  }
  if (::chmod(temp.c_str(), 0600) != 0) {
    *error = "cannot set up socket " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    acceptor_.close(ec);
    return false;
  }
  const std::vector<uid_t> others = policy_.other_users();
  if (!grant_socket_access(temp, others, error)) {
    ::unlink(temp.c_str());
    acceptor_.close(ec);
    return false;
  }
  // No replace: a hostpeer that started at the same time keeps its socket.
  int moved = ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  if (moved != 0 && errno == EINVAL) moved = ::rename(temp.c_str(), path.c_str());
  if (moved != 0) {
    *error = errno == EEXIST ? path + " was created by someone else while hostpeer was starting: "
                               "choose another socket path"
                             : "cannot set up socket " + path + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    acceptor_.close(ec);
    return false;
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + path + ": " + ec.message();
    ::unlink(path.c_str());
    return false;
  }
  path_ = path;
  owns_path_ = true;
  serve();
  return true;
}

bool Server::adopt(int fd, std::string* error) {
  const std::string what = "the socket handed over (descriptor " + std::to_string(fd) + ")";
  int domain = 0, type = 0, listening = 0;
  socklen_t size = sizeof domain;
  bool usable = ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) == 0;
  size = sizeof type;
  usable = usable && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0;
  size = sizeof listening;
  usable = usable && ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0;
  if (!usable || domain != AF_UNIX || type != SOCK_STREAM || !listening) {
    *error = what + " is not a listening Unix stream socket: use ListenStream=PATH in the "
             ".socket unit (or systemd-socket-activate -l PATH)";
    ::close(fd);
    return false;
  }
  sockaddr_un address{};
  socklen_t length = sizeof address;
  std::string path;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
      length > offsetof(sockaddr_un, sun_path) && address.sun_path[0] != '\0') {
    path.assign(address.sun_path, ::strnlen(address.sun_path, sizeof address.sun_path));
  }
  const std::vector<uid_t> others = policy_.other_users();
  if (!others.empty() && path.empty()) {
    *error = what + " has no path, so the allowed users cannot be given access to it";
    ::close(fd);
    return false;
  }
  if (!path.empty() && !grant_socket_access(path, others, error)) {
    ::close(fd);
    return false;
  }
  boost::system::error_code ec;
  acceptor_.assign(stream(), fd, ec);
  if (ec) {
    *error = "cannot serve " + what + ": " + ec.message();
    ::close(fd);
    return false;
  }
  path_ = path;
  owns_path_ = false;
  serve();
  return true;
}

void Server::serve() {
  for (uid_t uid : policy_.other_users()) {
    if (auto closed = directory_closed_to(path_, uid)) log_->warn("{}", *closed);
  }
  log_->info("listening on {} (descriptors for unread frames: at most {} per peer, {} in all)",
             path_.empty() ? std::string("a socket without a path") : path_,
             budget_.bounds().per_peer, budget_.bounds().total);
  accept();
}

void Server::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      if (failed_accepts_ != 0) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - first_failed_accept_);
        log_->warn("accepting again, after {} failed accepts over {} ms", failed_accepts_,
                   ms.count());
        failed_accepts_ = 0;
      }
      auto session = std::make_shared<Session>(std::move(socket), core_, policy_, budget_,
                                               hello_deadline_, log_);
      sessions_.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      sessions_.push_back(session);
      session->start();
      accept();
      return;
    }
    accept_failed(ec);
  });
}

void Server::accept_failed(const boost::system::error_code& ec) {
  if (failed_accepts_++ == 0) {
    first_failed_accept_ = std::chrono::steady_clock::now();
    std::string advice;
    if (ec == asio::error::no_descriptors) {  // EMFILE
      rlimit files{};
      ::getrlimit(RLIMIT_NOFILE, &files);
      advice = fmt::format(
          " (hostpeer's descriptors are all in use: RLIMIT_NOFILE is {} soft, {} hard; each "
          "guest holds about 4, see docs/PERFORMANCE.md; raise it with `ulimit -n` or "
          "LimitNOFILE= in the systemd unit)",
          files.rlim_cur == RLIM_INFINITY ? std::string("unlimited")
                                          : std::to_string(files.rlim_cur),
          files.rlim_max == RLIM_INFINITY ? std::string("unlimited")
                                          : std::to_string(files.rlim_max));
    } else if (ec.value() == ENFILE) {
      advice = " (the system's open-file table is full: see fs.file-max)";
    }
    log_->warn(
        "accept failed: {}{}; retrying every 100 ms until it works (further failures "
        "are logged at debug)",
        ec.message(), advice);
  } else {
    log_->debug("accept failed again ({} in a row): {}", failed_accepts_, ec.message());
  }
  // Try again a little later rather than spin.
  retry_.expires_after(std::chrono::milliseconds(100));
  retry_.async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec && acceptor_.is_open()) accept();
  });
}

void Server::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  retry_.cancel();
  for (auto& weak : sessions_) {
    if (auto session = weak.lock()) session->close("hostpeer is stopping");
  }
  sessions_.clear();
  if (owns_path_) {
    ::unlink(path_.c_str());
    log_->info("stopped; removed {}", path_);
  } else {
    log_->info("stopped");
  }
  owns_path_ = false;
  path_.clear();
}

}  // namespace vmci::host
