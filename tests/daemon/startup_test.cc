// vmci-hostpeer's start, as a script or a service manager sees it: the
// ready descriptor, systemd's notification socket, a socket handed over
// (socket activation, by hand and by systemd-socket-activate), and the
// error texts of a start that cannot be (a socket file in the way, a path
// too long, a user not allowed). Real processes, pipes and sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
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
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "processes.h"

namespace vmci::testing {
namespace {

// A program started with some descriptors put in place and some variables
// set; stderr goes to a file. Killed and reaped at destruction.
class Launched {
 public:
  struct Setup {
    std::vector<std::pair<int, int>> descriptors;  // (ours, its number in the child)
    std::vector<std::pair<std::string, std::string>> environment;
    bool listen_pid_is_child = false;  // LISTEN_PID = the child's own pid
    int run_as_uid = -1;
  };

  Launched(const std::vector<std::string>& argv, const Setup& setup, const std::string& log)
      : log_(log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(err, 2);
      // Moved up first, out of the way of the numbers they are given.
      std::vector<std::pair<int, int>> moved;
      for (const auto& [ours, theirs] : setup.descriptors)
        moved.emplace_back(::fcntl(ours, F_DUPFD_CLOEXEC, 100), theirs);
      for (const auto& [high, theirs] : moved) ::dup2(high, theirs);  // clears FD_CLOEXEC
      for (const auto& [name, value] : setup.environment) ::setenv(name.c_str(), value.c_str(), 1);
      if (setup.listen_pid_is_child) ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
      if (setup.run_as_uid >= 0 && (::setgid(static_cast<gid_t>(setup.run_as_uid)) != 0 ||
                                    ::setuid(static_cast<uid_t>(setup.run_as_uid)) != 0))
        _exit(126);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(126);
      ::execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~Launched() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // The exit code, or -1 if it did not exit by itself within timeout_ms.
  int wait(int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  int stop() {
    ::kill(pid_, SIGTERM);
    return wait(10000);
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// A pipe whose read end the test keeps.
class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  }
  ~Pipe() {
    close_write();
    ::close(fds_[0]);
  }
  int write_end() const { return fds_[1]; }
  void close_write() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  // All that was written until the writers closed it, or "<open>" if they
  // have not within timeout_ms.
  std::string read_to_eof(int timeout_ms) {
    std::string text;
    char buffer[512];
    for (;;) {
      pollfd p{fds_[0], POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) != 1) return "<open>";
      const ssize_t n = ::read(fds_[0], buffer, sizeof buffer);
      if (n <= 0) return text;
      text.append(buffer, static_cast<size_t>(n));
    }
  }

 private:
  int fds_[2];
};

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// A Unix socket bound at `path`; listening or not (a leftover file).
int bound_socket(const std::string& path, int type, bool listening) {
  const int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  const sockaddr_un address = unix_address(path);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      (listening && ::listen(fd, 16) != 0))
    throw std::runtime_error("cannot bind " + path);
  return fd;
}

// The next datagram on `fd`, or "<none>" after timeout_ms.
std::string receive_datagram(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return "<none>";
  char buffer[4096];
  const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
  return n < 0 ? "<error>" : std::string(buffer, static_cast<size_t>(n));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class DaemonStart : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string log_path() const { return path("stderr.log"); }
  TempDir dir_;
};

TEST_F(DaemonStart, ReadyFdSaysThePathOnceTheSocketListensThenCloses) {
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{ready.write_end(), 5}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock"), "--ready-fd", "5"}, setup,
                  log_path());
  ready.close_write();
  EXPECT_EQ(ready.read_to_eof(10000), path("s.sock") + "\n");
  EXPECT_TRUE(socket_answers(path("s.sock"))) << "listening when the line came, no polling";
  Peer guest;
  EXPECT_EQ(guest.call("connect " + path("s.sock") + " guest"), "0 16");
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(DaemonStart, ReadyFdClosesWithoutALineWhenTheStartFails) {
  std::ofstream(path("in-the-way")) << "a regular file";
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{ready.write_end(), 5}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("in-the-way"), "--ready-fd", "5"}, setup,
                  log_path());
  ready.close_write();
  EXPECT_EQ(ready.read_to_eof(10000), "");
  EXPECT_EQ(daemon.wait(10000), 1);
  EXPECT_TRUE(contains(daemon.log(), path("in-the-way") + " exists and is not a socket"))
      << daemon.log();
  EXPECT_TRUE(std::filesystem::is_regular_file(path("in-the-way"))) << "left alone";
}

TEST_F(DaemonStart, ReadyFdThatIsNotOpenIsRefusedBeforeAnythingIsMade) {
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock"), "--ready-fd", "57"}, {},
                  log_path());
  EXPECT_EQ(daemon.wait(10000), 1);
  EXPECT_TRUE(contains(daemon.log(), "--ready-fd 57: not an open descriptor")) << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(path("s.sock")));
}

TEST_F(DaemonStart, NotifiesSystemdReadyThenStopping) {
  const int systemd = bound_socket(path("notify"), SOCK_DGRAM, false);
  Launched::Setup setup;
  setup.environment = {{"NOTIFY_SOCKET", path("notify")}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock")}, setup, log_path());
  EXPECT_EQ(receive_datagram(systemd, 10000), "READY=1\nSTATUS=listening on " + path("s.sock"));
  EXPECT_TRUE(socket_answers(path("s.sock")));
  ::kill(daemon.pid(), SIGTERM);
  EXPECT_EQ(receive_datagram(systemd, 10000), "STOPPING=1");
  EXPECT_EQ(daemon.wait(10000), 0);
  ::close(systemd);
}

TEST_F(DaemonStart, ServesTheSocketHandedOverAndLeavesItsFile) {
  const int handed = bound_socket(path("activated.sock"), SOCK_STREAM, true);
  Launched::Setup setup;
  setup.descriptors = {{handed, 3}};
  setup.environment = {{"LISTEN_FDS", "1"}};
  setup.listen_pid_is_child = true;
  const int systemd = bound_socket(path("notify"), SOCK_DGRAM, false);
  setup.environment.emplace_back("NOTIFY_SOCKET", path("notify"));
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("ignored.sock")}, setup, log_path());
  ::close(handed);
  EXPECT_EQ(receive_datagram(systemd, 10000),
            "READY=1\nSTATUS=listening on " + path("activated.sock"));
  Peer guest, host;
  EXPECT_EQ(guest.call("connect " + path("activated.sock") + " guest"), "0 16");
  EXPECT_EQ(host.call("connect " + path("activated.sock") + " host"), "0 2");
  EXPECT_FALSE(std::filesystem::exists(path("ignored.sock")));
  EXPECT_TRUE(contains(daemon.log(), "--socket " + path("ignored.sock") + " is ignored"))
      << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_TRUE(std::filesystem::exists(path("activated.sock")))
      << "the socket belongs to whoever handed it over";
  ::close(systemd);
}

TEST_F(DaemonStart, SocketMeantForAnotherProcessIsNotTaken) {
  const int handed = bound_socket(path("activated.sock"), SOCK_STREAM, true);
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{handed, 3}, {ready.write_end(), 5}};
  setup.environment = {{"LISTEN_FDS", "1"}, {"LISTEN_PID", std::to_string(::getpid())}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("own.sock"), "--ready-fd", "5"}, setup,
                  log_path());
  ::close(handed);
  ready.close_write();
  EXPECT_EQ(ready.read_to_eof(10000), path("own.sock") + "\n");
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(DaemonStart, HandedSomethingUnusableIsRefusedSayingWhy) {
  const int datagram = bound_socket(path("dgram.sock"), SOCK_DGRAM, false);
  const int not_listening = bound_socket(path("quiet.sock"), SOCK_STREAM, false);
  const int null_file = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  struct Case {
    int fd;
    const char* fds;
    const char* says;
  } cases[] = {
      {datagram, "1", "is not a listening Unix stream socket"},
      {not_listening, "1", "is not a listening Unix stream socket"},
      {null_file, "1", "is not a listening Unix stream socket"},
      {null_file, "2", "vmci-hostpeer serves exactly one"},
      {null_file, "two", "LISTEN_FDS=two is not a number"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    Launched::Setup setup;
    setup.descriptors = {{c.fd, 3}};
    setup.environment = {{"LISTEN_FDS", c.fds}};
    setup.listen_pid_is_child = true;
    const std::string log = path("case" + std::to_string(n++) + ".log");
    Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock")}, setup, log);
    EXPECT_EQ(daemon.wait(10000), 1);
    EXPECT_TRUE(contains(daemon.log(), c.says)) << daemon.log();
    EXPECT_FALSE(std::filesystem::exists(path("s.sock")));
  }
  ::close(datagram);
  ::close(not_listening);
  ::close(null_file);
}

TEST_F(DaemonStart, SystemdSocketActivateStartsItOnTheFirstConnection) {
  if (::system("command -v systemd-socket-activate >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "systemd-socket-activate is not installed";
  Launched activator({"systemd-socket-activate", "-l", path("activated.sock"), VMCI_HOSTPEER_BIN,
                      "--log-level", "info"},
                     {}, log_path());
  for (int i = 0; i < 500 && !std::filesystem::exists(path("activated.sock")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  Peer guest;  // its connection is what starts hostpeer
  EXPECT_EQ(guest.call("connect " + path("activated.sock") + " guest", 10000), "0 16");
  EXPECT_TRUE(contains(activator.log(), "listening on " + path("activated.sock")))
      << activator.log();
  EXPECT_EQ(activator.stop(), 0);
}

TEST_F(DaemonStart, ALeftoverSocketIsRemovedAndSaidSo) {
  ::close(bound_socket(path("s.sock"), SOCK_STREAM, false));  // a killed hostpeer's file
  ASSERT_TRUE(std::filesystem::exists(path("s.sock")));
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{ready.write_end(), 5}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock"), "--ready-fd", "5"}, setup,
                  log_path());
  ready.close_write();
  EXPECT_EQ(ready.read_to_eof(10000), path("s.sock") + "\n");
  EXPECT_TRUE(contains(daemon.log(), "removed " + path("s.sock") + ", a stale socket nobody served"))
      << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(DaemonStart, ALiveSocketIsRefusedNamingItsPathAndProcess) {
  Daemon first;
  Launched second({VMCI_HOSTPEER_BIN, "--socket", first.socket_path()}, {}, log_path());
  EXPECT_EQ(second.wait(10000), 1);
  const std::string says = first.socket_path() +
                           " is being served by a running hostpeer or another program (process " +
                           std::to_string(first.process().pid());
  EXPECT_TRUE(contains(second.log(), says)) << second.log();
  EXPECT_TRUE(contains(second.log(), "stop it first, or choose another socket path"))
      << second.log();
  EXPECT_TRUE(socket_answers(first.socket_path())) << "the first daemon still serves";
}

TEST_F(DaemonStart, ATooLongPathIsRefusedGivingTheLimit) {
  const std::string long_path = dir_.path() + "/" + std::string(120, 's');
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", long_path}, {}, log_path());
  EXPECT_EQ(daemon.wait(10000), 1);
  EXPECT_TRUE(contains(daemon.log(), "a Unix socket path holds at most 107")) << daemon.log();
  EXPECT_TRUE(contains(daemon.log(), std::to_string(long_path.size()) + " bytes long"))
      << daemon.log();
}

TEST_F(DaemonStart, APathOfExactly107BytesWorks) {
  std::string longest = dir_.path() + "/";
  longest += std::string(107 - longest.size(), 'a');
  ASSERT_EQ(longest.size(), 107u);
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{ready.write_end(), 5}};
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", longest, "--ready-fd", "5"}, setup,
                  log_path());
  ready.close_write();
  EXPECT_EQ(ready.read_to_eof(10000), longest + "\n") << daemon.log();
  EXPECT_EQ(daemon.stop(), 0);
}

// hostpeer as `nobody`: root's connection is refused by SO_PEERCRED, and
// the refusal names both flags; a socket hostpeer's user cannot probe is
// left alone with the reason.
constexpr int kNobody = 65534;

TEST_F(DaemonStart, AUserNotAllowedIsToldTheFlagsThatAdmitIt) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run hostpeer as another user";
  ::chmod(dir_.path().c_str(), 0777);
  Pipe ready;
  Launched::Setup setup;
  setup.descriptors = {{ready.write_end(), 5}};
  setup.run_as_uid = kNobody;
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("s.sock"), "--ready-fd", "5"}, setup,
                  log_path());
  ready.close_write();
  ASSERT_EQ(ready.read_to_eof(10000), path("s.sock") + "\n") << daemon.log();
  Peer root;
  const std::string refused = root.call("connect " + path("s.sock") + " guest");
  EXPECT_TRUE(contains(refused, "--allow-guest-uid 0")) << refused;
  EXPECT_TRUE(contains(refused, "--allow-host-uid 0")) << refused;
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(DaemonStart, ASocketThatCannotBeProbedIsLeftAlone) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run hostpeer as another user";
  ::chmod(dir_.path().c_str(), 0777);
  ::close(bound_socket(path("roots.sock"), SOCK_STREAM, false));
  ::chmod(path("roots.sock").c_str(), 0600);
  Launched::Setup setup;
  setup.run_as_uid = kNobody;
  Launched daemon({VMCI_HOSTPEER_BIN, "--socket", path("roots.sock")}, setup, log_path());
  EXPECT_EQ(daemon.wait(10000), 1);
  EXPECT_TRUE(contains(daemon.log(), path("roots.sock") + " is a socket of user 0 that cannot be "
                                                          "probed"))
      << daemon.log();
  EXPECT_TRUE(std::filesystem::exists(path("roots.sock")));
}

}  // namespace
}  // namespace vmci::testing
