// vmci-vsock-run: runs a program, unmodified, with its AF_VSOCK sockets
// served by this project's vSockets over VMCI instead of the kernel's.
//
//   vmci-vsock-run [--socket PATH] --host -- PROGRAM [ARGS...]
//   vmci-vsock-run [--socket PATH] --guest [--cid N] -- PROGRAM [ARGS...]
//
// The launcher connects to hostpeer as one guest context (or as a host
// connection), starts the broker (broker.h) on that endpoint, puts its
// seccomp filter on itself (seccomp_filter.h) and runs PROGRAM with the
// preload library, which sends every AF_VSOCK call of PROGRAM and of all
// it starts to the broker. Its exit status is PROGRAM's (128 + N for a
// signal N); a failure of its own exits 125 before PROGRAM runs (126:
// PROGRAM cannot be run, 127: not found).
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "broker.h"
#include "seccomp_filter.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/socket_path.h"

namespace {

constexpr int kLauncherFailed = 125;
constexpr int kCannotRun = 126;
constexpr int kNotFound = 127;

// For the signal handler: while the program runs, a signal is forwarded
// to it; once it has exited, a signal ends the wait for its peers (drain).
std::atomic<pid_t> child_pid{0};
volatile std::sig_atomic_t stop_draining = 0;

void forward_signal(int sig) {
  if (const pid_t pid = child_pid.load(); pid > 0) {
    ::kill(pid, sig);
  } else {
    stop_draining = 1;
  }
}

// The preload library: $VMCI_VSOCK_PRELOAD, else next to this program (the
// build tree), else where it is installed.
std::string find_preload_library() {
  if (const char* given = std::getenv("VMCI_VSOCK_PRELOAD"); given != nullptr && *given) {
    return given;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / "libvmci-vsock-preload.so";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return VMCI_VSOCK_PRELOAD_INSTALLED;
}

// A private directory for the broker's socket, removed at the end.
class PrivateDir {
 public:
  PrivateDir() {
    char pattern[] = "/tmp/vmci-vsock-run-XXXXXX";
    if (::mkdtemp(pattern) != nullptr) path_ = pattern;
  }
  ~PrivateDir() { remove(); }
  void remove() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    path_.clear();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "vmci-vsock-run: %s\n", what.c_str());
  std::exit(kLauncherFailed);
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path = vmci::proto::default_socket_path();
  bool host = false, guest = false;
  std::optional<uint32_t> cid;
  std::vector<std::string> program;

  CLI::App app{
      "vmci-vsock-run: runs PROGRAM (and all it starts) as one VMCI endpoint of hostpeer, its "
      "AF_VSOCK sockets served by vSockets over VMCI; the kernel's own AF_VSOCK is kept out of "
      "reach by a seccomp filter."};
  app.set_version_flag("--version", std::string("vmci-vsock-run ") + VMCI_VERSION);
  app.add_option("--socket", socket_path, "hostpeer's control socket")->capture_default_str();
  auto* host_flag = app.add_flag("--host", host, "be a host connection (context 2)");
  auto* guest_flag = app.add_flag("--guest", guest, "be one guest context");
  host_flag->excludes(guest_flag);
  app.add_option("--cid", cid, "the guest's context id, if free (else one is assigned)")
      ->needs(guest_flag);
  std::string capture_path;
  app.add_option("--capture", capture_path,
                 "write every vSockets control packet the program's sockets send and receive, "
                 "every byte its streams write and read and every datagram (the data included) "
                 "to FILE (created or truncated, mode 0600) as pcapng, in Linux's vsockmon format "
                 "(LINKTYPE_VSOCK), which tshark and Wireshark decode")
      ->type_name("FILE");
  unsigned linger_s = 10;
  app.add_option("--linger", linger_s,
                 "once PROGRAM has exited, how long its peers may go without taking a byte of "
                 "what it wrote before the launcher gives up on it and says so (0: as soon as "
                 "they take nothing; a signal also ends the wait)")
      ->check(CLI::Range(0u, 3600u))
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("program", program, "PROGRAM [ARGS...] (after --)")->required();
  app.footer(
      "Exit status: PROGRAM's (128+N if a signal N ended it); 125 if the launcher failed, 126 if "
      "PROGRAM cannot be run, 127 if it was not found.");
  CLI11_PARSE(app, argc, argv);
  if (!host && !guest) fail("say --host or --guest");

  // The filter first: nothing this process or its children do reaches the
  // kernel's AF_VSOCK.
  std::string error;
  if (!vmci::vsock_run::install_vsock_filter(&error)) fail(error);

  const std::string preload = find_preload_library();
  if (::access(preload.c_str(), R_OK) != 0) {
    fail("the preload library " + preload + " is missing (set VMCI_VSOCK_PRELOAD)");
  }

  vmci::guest::ConnectOptions options;
  options.socket_path = socket_path;
  options.role = host ? vmci::proto::Role::kHost : vmci::proto::Role::kGuest;
  if (cid) options.context_id = *cid;
  int status = 0;
  auto endpoint = vmci::guest::Driver::connect(options, &status, &error);
  if (!endpoint) fail("cannot connect to hostpeer at " + socket_path + ": " + error);

  PrivateDir dir;
  if (dir.path().empty()) fail(std::string("mkdtemp: ") + std::strerror(errno));
  std::shared_ptr<vmci::vsock::Capture> capture;
  if (!capture_path.empty()) {
    capture = vmci::vsock::Capture::open(capture_path, &error);
    if (!capture) fail(error);
  }
  vmci::vsock_run::Broker broker(*endpoint, dir.path() + "/broker.sock", capture);
  if (!broker.start(&error)) fail(error);

  ::signal(SIGPIPE, SIG_IGN);
  const pid_t pid = ::fork();
  if (pid < 0) fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    const char* before = std::getenv("LD_PRELOAD");
    const std::string preloads =
        before != nullptr && *before ? preload + ":" + before : preload;
    ::setenv("LD_PRELOAD", preloads.c_str(), 1);
    ::setenv(vmci::vsock_run::kBrokerEnv, broker.socket_path().c_str(), 1);
    ::setenv(vmci::vsock_run::kBrokerPidEnv, std::to_string(::getppid()).c_str(), 1);
    std::vector<char*> args;
    for (auto& a : program) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    const int why = errno;
    std::fprintf(stderr, "vmci-vsock-run: cannot run %s: %s\n", args[0], std::strerror(why));
    ::_exit(why == ENOENT ? kNotFound : kCannotRun);
  }
  child_pid.store(pid);
  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  ::sigemptyset(&forward.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &forward, nullptr);

  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  child_pid.store(0);  // reaped: its pid may be another process's now
  const int status_of_program =
      WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : WEXITSTATUS(wait_status);
  // What the program wrote before it exited reaches its peers first, as a
  // kernel socket's writes would have (the peers have --linger seconds
  // without taking a byte before the launcher gives up on them; a signal
  // ends the wait at once).
  const std::vector<std::string> lost =
      broker.drain(std::chrono::seconds(linger_s), &stop_draining);
  const std::string why = stop_draining
                              ? "stopped by a signal"
                              : "its peer took nothing in " + std::to_string(linger_s) + " s";
  for (const std::string& stream : lost) {
    std::fprintf(stderr, "vmci-vsock-run: %s, so what the program wrote is lost: %s\n", why.c_str(),
                 stream.c_str());
  }
  // The launcher ends with the program, at once, as a VM's context ends
  // with the VM: its connection closes with the process (hostpeer detaches
  // what the context held and tells its peers), and the broker's threads,
  // which may be in the middle of a pump, are not unwound one by one.
  dir.remove();
  std::fflush(nullptr);
  ::_exit(status_of_program);
}
