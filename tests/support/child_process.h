// child_process.h: a process a test (or the soak) starts with fork and
// exec, and talks to line by line over pipes.
//
//   ChildProcess guest({"/path/vmci-soak", "--guest", ...}, {.piped = true});
//   guest.write_line("connect -");
//   std::string hello = guest.read_line(30000);   // or "<timeout>" / "<eof>"
//
// A child dies with its parent (PR_SET_PDEATHSIG), and is killed and reaped
// when its ChildProcess is destroyed, so no process outlives its owner.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace vmci::testing {

struct ChildOptions {
  bool piped = false;        // stdin and stdout are pipes to this process
  std::string stderr_path;   // if not empty, stderr goes (appended) to this file
  int run_as_uid = -1;       // >= 0: the child becomes this user before exec (root only)

  static ChildOptions with_pipes() {
    ChildOptions options;
    options.piped = true;
    return options;
  }
};

class ChildProcess {
 public:
  // Throws std::runtime_error if fork or pipe fails; a failed exec is an
  // exit with status 127.
  ChildProcess(const std::vector<std::string>& argv, const ChildOptions& options);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False if the pipe is gone (the child exited).
  bool write_line(const std::string& line);
  // The next line of stdout without its newline, or "<timeout>" after
  // timeout_ms (0: only what is already there), or "<eof>".
  std::string read_line(int timeout_ms);
  void signal(int sig);
  // Waits for the exit; the wait status, or -1 after timeout_ms.
  int wait(int timeout_ms);
  // False once the child has exited (it is then reaped; exit_status() says how).
  bool running();
  int exit_status() const { return status_; }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
  bool reaped_ = false;
  int status_ = -1;
};

// "exit 0", "exit 1", "killed by signal 9".
std::string describe_wait_status(int status);

}  // namespace vmci::testing
