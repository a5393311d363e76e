// processes.h: real separate processes for integration tests: the hostpeer
// daemon on a private socket, and test peers driven over pipes; and a
// hostpeer embedded in the test process.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace vmci::testing {

// An endpoint of this process connected to hostpeer at `socket` as `role`;
// null, and the test failed with hostpeer's error, if it cannot connect.
std::unique_ptr<guest::Driver> connect(const std::string& socket, proto::Role role);

// A private temporary directory, removed with its contents at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A hostpeer embedded in the test process, its socket in a temporary
// directory of its own (`options.socket_path` is set here).
class EmbeddedHostpeer {
 public:
  // Throws std::runtime_error (which fails the test) if it cannot start.
  explicit EmbeddedHostpeer(host::Options options = {});
  host::HostPeer* operator->() const { return hostpeer_.get(); }
  const std::string& socket_path() const { return hostpeer_->socket_path(); }

 private:
  TempDir dir_;
  std::unique_ptr<host::HostPeer> hostpeer_;
};

// vmci-hostpeer on a socket in a private directory.
class Daemon {
 public:
  // With `run_as_uid` >= 0 the daemon runs as that user (root only).
  explicit Daemon(std::vector<std::string> extra_args = {}, int run_as_uid = -1);
  const std::string& socket_path() const { return socket_; }
  ChildProcess& process() { return *child_; }
  // SIGTERM and wait; returns the exit code (-1 if it did not exit cleanly).
  int stop();

 private:
  TempDir dir_;
  std::string socket_;
  std::unique_ptr<ChildProcess> child_;
};

// vmci-test-peer: one endpoint in its own process (see tests/peers/test_peer.cc).
class Peer {
 public:
  Peer();
  // Sends one command and returns its one-line answer.
  std::string call(const std::string& command, int timeout_ms = 5000);
  ChildProcess& process() { return child_; }

 private:
  ChildProcess child_;
};

// Whether something accepts connections on this Unix socket path.
bool socket_answers(const std::string& path);

}  // namespace vmci::testing
