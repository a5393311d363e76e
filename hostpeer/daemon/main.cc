// vmci-hostpeer: the hypervisor side of VMCI as a daemon.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "daemon/readiness.h"
#include "daemon/socket_activation.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/socket_path.h"

int main(int argc, char** argv) {
  vmci::host::Options options;
  options.socket_path = vmci::proto::default_socket_path();
  std::string level = "info";
  int ready_fd = -1;

  CLI::App app{"vmci-hostpeer: the hypervisor side of VMware's VMCI, in user space"};
  app.set_version_flag("--version", "vmci-hostpeer " VMCI_VERSION);
  auto* socket_option =
      app.add_option("--socket", options.socket_path,
                     "control socket path (at most 107 bytes; ignored when systemd hands "
                     "the socket over, LISTEN_FDS)")
          ->capture_default_str();
  app.add_option("--ready-fd", ready_fd,
                 "once the socket listens, write its path and a newline to descriptor N and "
                 "close it (closed without a line if hostpeer cannot start)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--trace", options.trace_path,
                 "append every request served (with its result), every delivery and every peer "
                 "that comes and goes to FILE, as JSON Lines (for vmci-scenario record)");
  app.add_option("--capture", options.capture_path,
                 "write every datagram routed and delivered (header and payload: what guests "
                 "and hosts send is in it), every hypercall and request with its result, "
                 "contexts and queue pairs coming and going, and doorbells rung through "
                 "hostpeer to FILE (created or truncated, mode 0600) as pcapng for Wireshark, "
                 "with share/vmci-hostpeer/wireshark/vmci.lua (docs/CAPTURE.md); while it "
                 "captures, no datagram or ring takes a fast path around hostpeer")
      ->type_name("FILE");
  app.add_option("--metrics", options.metrics_address,
                 "serve Prometheus metrics (per-context datagram and byte counts, pending "
                 "datagrams, queue pairs and each queue's fill, doorbell rings, refusals by "
                 "status, process figures) at http://ADDR:PORT/metrics, e.g. 127.0.0.1:9464 "
                 "(port 0: any free port, logged); off by default. Another address than a "
                 "loopback one shows every context's figures to whoever reaches it: hostpeer "
                 "warns")
      ->type_name("ADDR:PORT");
  app.add_option("--log-level", level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--allow-guest-uid", options.guest_uids,
                 "another user that may connect as a guest (repeatable); the socket gets a "
                 "POSIX ACL entry for it, and its directory must let it search");
  app.add_option("--allow-host-uid", options.host_uids,
                 "another user that may connect as a host, context 2, or as a guest "
                 "(repeatable); the socket gets a POSIX ACL entry for it, and its directory "
                 "must let it search");
  app.add_option("--max-pending-datagram-bytes", options.limits.max_pending_datagram_bytes,
                 "datagram bytes one receiver may have pending")
      ->capture_default_str();
  app.add_option("--max-host-datagram-handles", options.limits.max_host_datagram_handles,
                 "datagram handles one host connection may hold")
      ->capture_default_str();
  app.add_option("--max-qp-memory-per-context", options.limits.max_qp_memory_per_context,
                 "queue-pair memory (bytes of both queues) of the pairs one context or host "
                 "connection is an endpoint of")
      ->capture_default_str();
  app.add_option("--max-queue-pairs-per-context", options.limits.max_queue_pairs_per_context,
                 "queue pairs one context or host connection is an endpoint of")
      ->capture_default_str();
  app.add_option("--max-doorbells-per-context", options.limits.max_doorbells_per_context,
                 "doorbells one guest context, or the host context's connections together, "
                 "may hold")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto log = spdlog::stderr_color_mt("vmci-hostpeer");
  log->set_level(spdlog::level::from_str(level));
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  // hostpeer's messages, out through this logger (LogLevel and spdlog's
  // levels run in the same order, trace to error).
  static_assert(static_cast<int>(vmci::host::LogLevel::kError) == spdlog::level::err);
  options.log = [log](vmci::host::LogLevel level, std::string_view message) {
    log->log(static_cast<spdlog::level::level_enum>(level), "{}", message);
  };
  options.log_level = static_cast<vmci::host::LogLevel>(std::min<int>(log->level(), spdlog::level::err));

  // Everything that can refuse the start is checked before the socket is
  // made, so nobody is told "ready" by a daemon about to exit.
  std::string error;
  std::optional<vmci::host::daemon::ReadyDescriptor> ready;
  if (ready_fd >= 0) {
    ready = vmci::host::daemon::ReadyDescriptor::adopt(ready_fd, &error);
    if (!ready) {
      log->error("{}", error);
      return 1;
    }
  }
  auto notifier =
      vmci::host::daemon::SystemdNotifier::from_environment(std::getenv("NOTIFY_SOCKET"), &error);
  if (!error.empty()) log->warn("{}", error);
  error.clear();
  const auto activated = vmci::host::daemon::activated_socket(
      std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"), ::getpid(), &error);
  if (!error.empty()) {
    log->error("{}", error);
    return 1;
  }
  if (activated) {
    options.listening_socket = *activated;
    if (socket_option->count() > 0)
      log->warn("--socket {} is ignored: serving the socket handed over (LISTEN_FDS)",
                options.socket_path);
  }
  // Not for what hostpeer might start: the variables describe this process.
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  ::unsetenv("NOTIFY_SOCKET");

  // Each queue pair holds descriptors in hostpeer (its memory and a host
  // endpoint's status page): take all the descriptors the system allows.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // SIGINT and SIGTERM are taken by sigwait below; every thread started
  // after this inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) {
    log->error("{}", error);
    return 1;  // `ready` closes its descriptor without a line
  }
  if (ready && !ready->announce(hostpeer->socket_path(), &error)) log->warn("{}", error);
  if (notifier && !notifier->notify("READY=1\nSTATUS=listening on " + hostpeer->socket_path(),
                                    &error))
    log->warn("{}", error);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  log->info("{}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  if (notifier && !notifier->notify("STOPPING=1", &error)) log->warn("{}", error);
  hostpeer.reset();
  return 0;
}
