#include "server/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "server/socket_access.h"

namespace vmci::host {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

bool someone_answers(const std::string& path) {
  asio::io_context io;
  stream::socket probe(io);
  boost::system::error_code ec;
  probe.connect(stream::endpoint(path), ec);
  return !ec;
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
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    *error = "socket path '" + path + "' is empty or too long";
    return false;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = path + " exists and is not a socket";
      return false;
    }
    if (someone_answers(path)) {
      *error = "another hostpeer is serving " + path;
      return false;
    }
    log_->info("removing stale socket {}", path);
    ::unlink(path.c_str());
  }
  // Bind under a name nobody knows, make it 0600 and let the allowed users
  // in (socket_access.h), then move it into place: nobody can connect
  // before its permissions are set.
  const std::string temp = path + ".tmp-" + random_suffix();
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
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    *error = "cannot set up socket " + path + ": " + std::strerror(errno);
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
  for (uid_t uid : others) {
    if (auto closed = directory_closed_to(path, uid)) log_->warn("{}", *closed);
  }
  log_->info("listening on {} (descriptors for unread frames: at most {} per peer, {} in all)",
             path, budget_.bounds().per_peer, budget_.bounds().total);
  accept();
  return true;
}

void Server::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      auto session = std::make_shared<Session>(std::move(socket), core_, policy_, budget_,
                                               hello_deadline_, log_);
      sessions_.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      sessions_.push_back(session);
      session->start();
      accept();
      return;
    }
    // Out of descriptors, say: try again a little later rather than spin.
    log_->warn("accept failed: {}; retrying in 100 ms", ec.message());
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([this](const boost::system::error_code& wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
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
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    log_->info("stopped; removed {}", path_);
    path_.clear();
  }
}

}  // namespace vmci::host
