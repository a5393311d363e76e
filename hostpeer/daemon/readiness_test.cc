// ReadyDescriptor over a real pipe and SystemdNotifier to a real Unix
// datagram socket.
#include "daemon/readiness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace vmci::host::daemon {
namespace {

// Everything the pipe holds until end of file, or "<open>" if the writer
// has not closed it within a second.
std::string read_to_eof(int fd) {
  std::string text;
  char buffer[256];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return "<open>";
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
}

TEST(ReadyDescriptor, AnnounceWritesThePathAndANewlineThenCloses) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::string error;
  auto ready = ReadyDescriptor::adopt(pipe_fds[1], &error);
  ASSERT_TRUE(ready) << error;
  EXPECT_TRUE(::fcntl(pipe_fds[1], F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(ready->announce("/run/user/1000/vmci-hostpeer.sock", &error)) << error;
  EXPECT_EQ(read_to_eof(pipe_fds[0]), "/run/user/1000/vmci-hostpeer.sock\n");
  EXPECT_TRUE(ready->announce("again", &error)) << "a second call writes nothing";
  ::close(pipe_fds[0]);
}

TEST(ReadyDescriptor, DestroyedWithoutAnnouncingClosesWithoutALine) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  std::string error;
  {
    auto ready = ReadyDescriptor::adopt(pipe_fds[1], &error);
    ASSERT_TRUE(ready) << error;
  }
  EXPECT_EQ(read_to_eof(pipe_fds[0]), "");
  ::close(pipe_fds[0]);
}

TEST(ReadyDescriptor, AClosedOrNegativeDescriptorIsRefusedNamingTheOption) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  for (int fd : {pipe_fds[1], -1}) {
    std::string error;
    EXPECT_FALSE(ReadyDescriptor::adopt(fd, &error));
    EXPECT_NE(error.find("--ready-fd " + std::to_string(fd) + ": not an open descriptor"),
              std::string::npos)
        << error;
  }
}

TEST(ReadyDescriptor, AReaderThatWentAwayIsAnErrorNotACrash) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[0]);
  ::signal(SIGPIPE, SIG_IGN);
  std::string error;
  auto ready = ReadyDescriptor::adopt(pipe_fds[1], &error);
  ASSERT_TRUE(ready) << error;
  EXPECT_FALSE(ready->announce("/tmp/x.sock", &error));
  EXPECT_NE(error.find("cannot write"), std::string::npos) << error;
}

// A Unix datagram socket bound to `name` (a path, or @name: abstract), as
// systemd's notification socket is.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') address.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                               (name[0] == '@' ? 0 : 1));
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0;
  }
  ~NotifySocket() { ::close(fd_); }
  bool bound() const { return bound_; }
  // The next datagram, or "<none>" after a second.
  std::string receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 1000) != 1) return "<none>";
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n < 0 ? "<error>" : std::string(buffer, static_cast<size_t>(n));
  }

 private:
  int fd_;
  bool bound_;
};

TEST(SystemdNotifier, SendsEachStateAsOneDatagramToAPath) {
  char dir[] = "/tmp/vmci-notify-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  NotifySocket systemd(path);
  ASSERT_TRUE(systemd.bound());
  std::string error;
  auto notifier = SystemdNotifier::from_environment(path.c_str(), &error);
  ASSERT_TRUE(notifier) << error;
  EXPECT_TRUE(notifier->notify("READY=1\nSTATUS=listening", &error)) << error;
  EXPECT_TRUE(notifier->notify("STOPPING=1", &error)) << error;
  EXPECT_EQ(systemd.receive(), "READY=1\nSTATUS=listening");
  EXPECT_EQ(systemd.receive(), "STOPPING=1");
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(SystemdNotifier, SendsToAnAbstractSocket) {
  const std::string name = "@vmci-notify-test-" + std::to_string(::getpid());
  NotifySocket systemd(name);
  ASSERT_TRUE(systemd.bound());
  std::string error;
  auto notifier = SystemdNotifier::from_environment(name.c_str(), &error);
  ASSERT_TRUE(notifier) << error;
  EXPECT_TRUE(notifier->notify("READY=1", &error)) << error;
  EXPECT_EQ(systemd.receive(), "READY=1");
}

TEST(SystemdNotifier, UnsetMeansNotStartedBySystemd) {
  std::string error;
  EXPECT_FALSE(SystemdNotifier::from_environment(nullptr, &error));
  EXPECT_FALSE(SystemdNotifier::from_environment("", &error));
  EXPECT_EQ(error, "");
}

TEST(SystemdNotifier, NamesThatAreNotUnixSocketsAreRefused) {
  const std::string too_long = "/" + std::string(200, 'x');
  for (const char* bad : {"relative/path", "@", too_long.c_str(), "vsock:2:5"}) {
    SCOPED_TRACE(bad);
    std::string error;
    EXPECT_FALSE(SystemdNotifier::from_environment(bad, &error));
    EXPECT_NE(error.find("NOTIFY_SOCKET="), std::string::npos) << error;
  }
}

TEST(SystemdNotifier, NobodyListeningIsAnErrorNamingTheSocket) {
  std::string error;
  auto notifier = SystemdNotifier::from_environment("/nonexistent/notify", &error);
  ASSERT_TRUE(notifier) << error;
  EXPECT_FALSE(notifier->notify("READY=1", &error));
  EXPECT_NE(error.find("NOTIFY_SOCKET=/nonexistent/notify"), std::string::npos) << error;
}

}  // namespace
}  // namespace vmci::host::daemon
