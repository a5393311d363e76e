#include "processes.h"

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

Child::Child(const std::vector<std::string>& argv, bool piped, int run_as_uid) {
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  if (piped && (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (piped) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
    }
    if (run_as_uid >= 0 && (::setgid(static_cast<gid_t>(run_as_uid)) != 0 ||
                            ::setuid(static_cast<uid_t>(run_as_uid)) != 0)) {
      _exit(126);
    }
    // Dies with the test, even when the test process is killed or aborts
    // (set after setuid, which clears it).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(args[0], args.data());
    _exit(127);
  }
  if (piped) {
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
  }
}

Child::~Child() {
  if (to_child_ >= 0) ::close(to_child_);
  if (from_child_ >= 0) ::close(from_child_);
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void Child::write_line(const std::string& line) {
  const std::string data = line + "\n";
  if (::write(to_child_, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    throw std::runtime_error("write to child failed");
  }
}

std::string Child::read_line(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "<timeout>";
    pollfd pfd{from_child_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(from_child_, buf, sizeof buf);
    if (n <= 0) return "<eof>";
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

void Child::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

int Child::wait(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

bool Child::running() {
  if (reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
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
  child_ = std::make_unique<Child>(argv, false, run_as_uid);
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

Peer::Peer() : child_({VMCI_TEST_PEER_BIN}, true) {}

std::string Peer::call(const std::string& command, int timeout_ms) {
  child_.write_line(command);
  return child_.read_line(timeout_ms);
}

}  // namespace vmci::testing
