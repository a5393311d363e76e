// server.h: the control-socket server: accepts peers on a Unix stream socket
// (mode 0600, opened to the allowed users by an ACL) and gives each a
// Session. Runs on the caller's io_context. Its sessions share one
// DescriptorBudget, sized from the process's descriptor limit when the
// server is made.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>

#include "server/asio.h"
#include "server/descriptor_budget.h"
#include "server/locked_core.h"
#include "server/session.h"

namespace vmci::host {

class Server {
 public:
  // A peer must say hello within `hello_deadline` of connecting.
  Server(boost::asio::io_context& io, LockedCore& core, PeerPolicy policy,
         std::chrono::milliseconds hello_deadline, std::shared_ptr<spdlog::logger> log);

  // Creates the socket at `path` with mode 0600, plus an ACL that lets the
  // policy's other users open it (socket_access.h), and starts accepting.
  // Fails if that ACL cannot be set; warns of each allowed user that a
  // directory above the socket keeps out. A stale socket file (nobody
  // answers) is replaced; a live one is an error, as is a path longer
  // than kMaxSocketPath. Each error says what to do.
  bool listen(const std::string& path, std::string* error);
  // Serves `fd`, a listening Unix stream socket someone else made (socket
  // activation), and takes ownership of it. Fails, closing it, if it is
  // not one. The users of the allow-lists get the same ACL on its file as
  // listen() gives; stop() leaves the file in place, since its maker will
  // hand it over again.
  bool adopt(int fd, std::string* error);
  // The socket's path (empty before listen() or adopt(), or for an
  // abstract or unnamed adopted socket).
  const std::string& path() const { return path_; }
  // Stops accepting, ends every session, removes the socket file (unless
  // it was adopted). Runs on the I/O thread.
  void stop();

 private:
  void accept();
  // An accept failed: the first of a run is logged at warn (out of
  // descriptors: naming RLIMIT_NOFILE and how to raise it), the rest at
  // debug; the next success logs how many failed. Retries in 100 ms.
  void accept_failed(const boost::system::error_code& ec);
  // Warns of each allowed user a directory keeps out, logs, and accepts.
  void serve();

  LockedCore& core_;
  const PeerPolicy policy_;
  const std::chrono::milliseconds hello_deadline_;
  DescriptorBudget budget_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // after a failed accept
  uint64_t failed_accepts_ = 0;      // in a row, since the last that worked
  std::chrono::steady_clock::time_point first_failed_accept_;
  std::list<std::weak_ptr<Session>> sessions_;
  std::string path_;
  bool owns_path_ = false;  // listen() made the file: stop() removes it
};

// The longest path a Unix socket can be bound to: sun_path less its NUL.
inline constexpr size_t kMaxSocketPath = 107;

}  // namespace vmci::host
