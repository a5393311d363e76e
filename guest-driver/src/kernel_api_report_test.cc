// The C API's words about status codes and an unreachable hostpeer:
// vmci_hostpeer_strerror for every code, and the one report on stderr.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "vmci/proto/names.h"
#include "vmci/vmci_hostpeer.h"
#include "vmci/vmci_kernel_api.h"

namespace {

TEST(Strerror, EveryStatusCodeHasItsNameAndASentence) {
  for (const auto& code : vmci::proto::status_codes()) {
    SCOPED_TRACE(std::string(code.name));
    const std::string text = vmci_hostpeer_strerror(static_cast<int>(code.value));
    ASSERT_EQ(text.rfind(std::string(code.name) + ": ", 0), 0u) << text;
    EXPECT_GT(text.size(), code.name.size() + 12) << "a sentence, not just the name";
    EXPECT_EQ(text.back(), '.');
  }
}

TEST(Strerror, NumbersThatAreNoStatusSaySo) {
  EXPECT_STREQ(vmci_hostpeer_strerror(29), "29: success: a count (of bytes, or datagram size).");
  EXPECT_STREQ(vmci_hostpeer_strerror(-42), "-42: not a VMCI status code.");
  EXPECT_STREQ(vmci_hostpeer_strerror(-520),
               "-520: an error of a VMCI client's own (the client range).");
  EXPECT_STREQ(vmci_hostpeer_strerror(VMCI_ERROR_UNAVAILABLE),
               "VMCI_ERROR_UNAVAILABLE: hostpeer cannot be reached or the connection to it "
               "ended (vmci_hostpeer_last_error() says why).");
}

// Runs `body` in a child process whose stderr goes to a file; returns what
// it wrote there.
std::string stderr_of_child(const std::function<void()>& body) {
  char path[] = "/tmp/vmci-report-test-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, STDERR_FILENO);
    body();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::close(fd);
  ::unlink(path);
  return text.str();
}

size_t count_lines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(UnreachableReport, AMissingSocketIsReportedOnceWithWhatToDo) {
  const std::string out = stderr_of_child([] {
    ::unsetenv("VMCI_HOSTPEER_QUIET");
    ::setenv("VMCI_HOSTPEER_SOCKET", "/tmp/vmci-no-such-dir-xyz/hostpeer.sock", 1);
    vmci_get_context_id();  // the implicit connection
    vmci_get_context_id();
    vmci_hostpeer_connect(nullptr);
  });
  EXPECT_EQ(count_lines(out), 1u) << out;
  EXPECT_NE(out.find("vmci: cannot reach hostpeer at /tmp/vmci-no-such-dir-xyz/hostpeer.sock"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("start one (vmci-hostpeer --socket"), std::string::npos) << out;
  EXPECT_NE(out.find("VMCI_HOSTPEER_SOCKET"), std::string::npos) << out;
}

TEST(UnreachableReport, AStaleSocketIsNamedStale) {
  char dir[] = "/tmp/vmci-stale-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/s.sock";
  {  // a socket file nobody listens on, as a killed hostpeer leaves it
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(s);
  }
  const std::string out = stderr_of_child([&] { vmci_hostpeer_connect(path.c_str()); });
  EXPECT_NE(out.find("the socket file is stale"), std::string::npos) << out;
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(UnreachableReport, APathTooLongGivesTheLimit) {
  const std::string path = "/tmp/" + std::string(200, 'x');
  const std::string out = stderr_of_child([&] {
    EXPECT_EQ(vmci_hostpeer_connect(path.c_str()), VMCI_ERROR_UNAVAILABLE);
  });
  EXPECT_NE(out.find("is 205 bytes; a Unix socket path may have at most 107"), std::string::npos)
      << out;
}

TEST(UnreachableReport, TheEnvironmentOrTheQuietFlagTurnsItOff) {
  EXPECT_EQ(stderr_of_child([] {
              ::setenv("VMCI_HOSTPEER_QUIET", "1", 1);
              vmci_hostpeer_connect("/tmp/vmci-no-such-dir-xyz/hostpeer.sock");
            }),
            "");
  EXPECT_EQ(stderr_of_child([] {
              ::unsetenv("VMCI_HOSTPEER_QUIET");
              vmci_hostpeer_options options{};
              options.socket_path = "/tmp/vmci-no-such-dir-xyz/hostpeer.sock";
              options.role = VMCI_HOSTPEER_ROLE_GUEST;
              options.context_id = VMCI_INVALID_ID;
              options.flags = VMCI_HOSTPEER_FLAG_QUIET;
              vmci_hostpeer_connect_options(&options);
              // The message is still there for the program to show.
              if (std::string(vmci_hostpeer_last_error()).find("cannot reach hostpeer") ==
                  std::string::npos) {
                ::_exit(3);
              }
            }),
            "");
}

}  // namespace
