// processes.h: real separate processes for integration tests: the hostpeer
// daemon on a private socket, and test peers driven over pipes; and a
// hostpeer embedded in the test process.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "vmci/host/hostpeer.h"

namespace vmci::testing {

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

// A child process started with fork and exec, killed at destruction.
class Child {
 public:
  // stdin/stdout are pipes when `piped`; stderr is inherited. With
  // `run_as_uid` >= 0 the child changes to that user before exec (root only).
  Child(const std::vector<std::string>& argv, bool piped, int run_as_uid = -1);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void write_line(const std::string& line);
  // A line from stdout, or "<timeout>" / "<eof>".
  std::string read_line(int timeout_ms);
  void signal(int sig);
  // Waits for exit; returns the wait status, or -1 after timeout_ms.
  int wait(int timeout_ms);
  bool running();

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
  bool reaped_ = false;
};

// vmci-hostpeer on a socket in a private directory.
class Daemon {
 public:
  // With `run_as_uid` >= 0 the daemon runs as that user (root only).
  explicit Daemon(std::vector<std::string> extra_args = {}, int run_as_uid = -1);
  const std::string& socket_path() const { return socket_; }
  Child& process() { return *child_; }
  // SIGTERM and wait; returns the exit code (-1 if it did not exit cleanly).
  int stop();

 private:
  TempDir dir_;
  std::string socket_;
  std::unique_ptr<Child> child_;
};

// vmci-test-peer: one endpoint in its own process (see tests/peers/test_peer.cc).
class Peer {
 public:
  Peer();
  // Sends one command and returns its one-line answer.
  std::string call(const std::string& command, int timeout_ms = 5000);
  Child& process() { return child_; }

 private:
  Child child_;
};

// Whether something accepts connections on this Unix socket path.
bool socket_answers(const std::string& path);

}  // namespace vmci::testing
