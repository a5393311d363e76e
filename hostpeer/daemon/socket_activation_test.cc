// activated_socket: which environments mean "socket-activated", which are
// errors, and which are meant for another process.
#include "daemon/socket_activation.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace vmci::host::daemon {
namespace {

// Descriptor 3 open (on /dev/null) for the duration of a test, or closed.
class DescriptorThree {
 public:
  explicit DescriptorThree(bool open) {
    saved_ = ::fcntl(3, F_DUPFD_CLOEXEC, 10);  // whatever 3 was, kept aside
    ::close(3);
    if (open) {
      const int fd = ::open("/dev/null", O_RDONLY);
      if (fd != 3) {
        ::dup2(fd, 3);
        ::close(fd);
      }
    }
  }
  ~DescriptorThree() {
    ::close(3);
    if (saved_ >= 0) {
      ::dup2(saved_, 3);
      ::close(saved_);
    }
  }

 private:
  int saved_;
};

TEST(SocketActivation, OneDescriptorForThisProcessIsDescriptorThree) {
  DescriptorThree three(true);
  const std::string self = std::to_string(::getpid());
  std::string error;
  const auto fd = activated_socket(self.c_str(), "1", ::getpid(), &error);
  ASSERT_TRUE(fd) << error;
  EXPECT_EQ(*fd, 3);
  EXPECT_TRUE(::fcntl(3, F_GETFD) & FD_CLOEXEC);
}

TEST(SocketActivation, NotActivatedIsNoSocketAndNoError) {
  DescriptorThree three(true);
  const std::string other = std::to_string(::getpid() + 1);
  struct Case {
    const char* pid;
    const char* fds;
  } cases[] = {{nullptr, nullptr}, {nullptr, "1"}, {"1", nullptr}, {other.c_str(), "1"},
               {"not a pid", "1"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.pid ? c.pid : "(unset)") + " " + (c.fds ? c.fds : "(unset)"));
    std::string error;
    EXPECT_FALSE(activated_socket(c.pid, c.fds, ::getpid(), &error));
    EXPECT_EQ(error, "");
  }
}

TEST(SocketActivation, AnythingButOneSocketIsAnError) {
  DescriptorThree three(true);
  const std::string self = std::to_string(::getpid());
  struct Case {
    const char* fds;
    const char* says;
  } cases[] = {{"2", "handed 2 sockets"}, {"0", "handed 0 sockets"}, {"x", "not a number"},
               {"1x", "not a number"}, {"", "not a number"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fds);
    std::string error;
    EXPECT_FALSE(activated_socket(self.c_str(), c.fds, ::getpid(), &error));
    EXPECT_NE(error.find(c.says), std::string::npos) << error;
  }
}

TEST(SocketActivation, DescriptorThreeClosedIsAnError) {
  DescriptorThree three(false);
  const std::string self = std::to_string(::getpid());
  std::string error;
  EXPECT_FALSE(activated_socket(self.c_str(), "1", ::getpid(), &error));
  EXPECT_NE(error.find("descriptor 3 is not open"), std::string::npos) << error;
}

}  // namespace
}  // namespace vmci::host::daemon
