#include "processes.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace vmci::testing {

std::unique_ptr<guest::Driver> connect(const std::string& socket, proto::Role role) {
  int status;
  std::string error;
  auto driver = guest::Driver::connect({.socket_path = socket, .role = role}, &status, &error);
  EXPECT_TRUE(driver) << error;
  return driver;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/vmci-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

EmbeddedHostpeer::EmbeddedHostpeer(host::Options options) {
  options.socket_path = dir_.path() + "/hostpeer.sock";
  std::string error;
  hostpeer_ = host::HostPeer::start(options, &error);
  if (!hostpeer_) throw std::runtime_error("embedded hostpeer: " + error);
}

bool socket_answers(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

Daemon::Daemon(std::vector<std::string> extra_args, int run_as_uid) {
  if (run_as_uid >= 0) ::chmod(dir_.path().c_str(), 0777);  // the daemon's user creates the socket
  socket_ = dir_.path() + "/hostpeer.sock";
  std::vector<std::string> argv = {VMCI_HOSTPEER_BIN, "--socket", socket_, "--log-level", "warn"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ChildOptions options;
  options.run_as_uid = run_as_uid;
  child_ = std::make_unique<ChildProcess>(argv, options);
  for (int i = 0; i < 1000 && !socket_answers(socket_); ++i) {
    if (!child_->running()) throw std::runtime_error("vmci-hostpeer exited at start");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!socket_answers(socket_)) throw std::runtime_error("vmci-hostpeer did not start");
}

int Daemon::stop() {
  child_->signal(SIGTERM);
  const int status = child_->wait(10000);
  if (status < 0 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

Peer::Peer() : child_({VMCI_TEST_PEER_BIN}, ChildOptions::with_pipes()) {}

std::string Peer::call(const std::string& command, int timeout_ms) {
  if (!child_.write_line(command)) return "<eof>";
  return child_.read_line(timeout_ms);
}

}  // namespace vmci::testing
