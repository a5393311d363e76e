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
  // answers) is replaced; a live one is an error.
  bool listen(const std::string& path, std::string* error);
  // Stops accepting, ends every session, removes the socket file. Runs on
  // the I/O thread.
  void stop();

 private:
  void accept();

  LockedCore& core_;
  const PeerPolicy policy_;
  const std::chrono::milliseconds hello_deadline_;
  DescriptorBudget budget_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // after a failed accept
  std::list<std::weak_ptr<Session>> sessions_;
  std::string path_;
};

}  // namespace vmci::host
