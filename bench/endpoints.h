// endpoints.h: the project's endpoints as the benchmarks start them (a
// hostpeer embedded on a socket with its host endpoint, Driver
// connections: each throws std::runtime_error with the reason when it
// cannot), a doorbell that goes with its trial, and a Driver's ring counts
// as RingPaths.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.h"
#include "ring_paths.h"
#include "rtt.h"
#include "trial.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace bench {

// A VMCI result as its name and sentence, for the bench's errors.
inline std::string result_text(int64_t result) { return vmci::proto::describe_result(result); }

// VMCI_BENCH_METRICS=ADDR:PORT: each hostpeer serves its metrics there
// (Options::metrics_address), so a scraper can run during the figures
// (docs/PERFORMANCE.md); the hostpeers of a run then take turns on it.
inline std::unique_ptr<vmci::host::HostPeer> start_hostpeer(const std::string& socket_path) {
  vmci::host::Options options;
  options.socket_path = socket_path;
  if (const char* metrics = std::getenv("VMCI_BENCH_METRICS")) options.metrics_address = metrics;
  std::string error;
  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) throw std::runtime_error("hostpeer: " + error);
  return hostpeer;
}

// A hostpeer embedded in this process, serving guests on a socket in a
// temp dir of its own, and its host endpoint (context 2, no socket).
class EmbeddedHostpeer {
 public:
  EmbeddedHostpeer()
      : hostpeer_(start_hostpeer(dir_.path() + "/hp.sock")), host_(hostpeer_->connect_host()) {
    if (!host_) throw std::runtime_error("hostpeer: no host endpoint");
  }
  EmbeddedHostpeer(const EmbeddedHostpeer&) = delete;
  EmbeddedHostpeer& operator=(const EmbeddedHostpeer&) = delete;

  vmci::host::HostPeer& hostpeer() const { return *hostpeer_; }
  vmci::Endpoint& host() const { return *host_; }
  // Where guests connect.
  const std::string& socket_path() const { return hostpeer_->socket_path(); }

 private:
  TempDir dir_;
  std::unique_ptr<vmci::host::HostPeer> hostpeer_;
  std::unique_ptr<vmci::Endpoint> host_;  // goes before hostpeer_
};

// The hostpeer daemon as a child process (`--child hostpeer`, pinned to
// `cpu`, -1 for none) on a socket in a temp dir of its own; ready once
// constructed. Its destructor kills it if stop() was not called.
class HostpeerDaemon {
 public:
  explicit HostpeerDaemon(int cpu) : child_(command(cpu), {control_.fd()}) {
    wait_until_ready(control_.get(), child_);
  }
  HostpeerDaemon(const HostpeerDaemon&) = delete;
  HostpeerDaemon& operator=(const HostpeerDaemon&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  Child& child() { return child_; }
  pid_t pid() const { return child_.pid(); }
  // Asks it to end; throws unless it exits cleanly within `timeout_s`.
  void stop(double timeout_s) {
    stop_child(control_.get());
    child_.wait_success(timeout_s);
  }

 private:
  std::vector<std::string> command(int cpu) const {
    ChildArgs args;
    args.transport = "hostpeer";
    args.parent = ::getpid();
    args.control_fd = control_.fd();
    args.socket_path = socket_path_;
    args.cpu = cpu;
    return args.to_command();
  }

  TempDir dir_;
  ControlPage control_;
  const std::string socket_path_ = dir_.path() + "/hp.sock";
  Child child_;
};

inline std::unique_ptr<vmci::guest::Driver> connect_driver(const std::string& socket_path,
                                                           vmci::proto::Role role) {
  vmci::guest::ConnectOptions options;
  options.socket_path = socket_path;
  options.role = role;
  int status = 0;
  std::string error;
  auto driver = vmci::guest::Driver::connect(options, &status, &error);
  if (!driver) {
    throw std::runtime_error(std::string(vmci::proto::role_name(role)) + " connect: " + error);
  }
  return driver;
}

// Destroys a doorbell when the trial ends, however it ends (waiting for its
// callback if it runs).
struct DoorbellGuard {
  vmci::Endpoint* endpoint;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ~DoorbellGuard() { destroy(); }
  // Destroys it now (once its callback, if running, has returned).
  void destroy() {
    if (!VMCI_HANDLE_INVALID(handle)) endpoint->doorbell_destroy(handle);
    handle = VMCI_INVALID_HANDLE;
  }
};

// Destroys a datagram handle when the trial ends, however it ends (waiting
// for its callback if it runs).
struct DatagramHandleGuard {
  vmci::Endpoint* endpoint;
  vmci_handle handle;
  ~DatagramHandleGuard() { endpoint->datagram_destroy_handle(handle); }
};

// How `driver`'s doorbell_notify calls went so far.
inline RingPaths ring_paths(const vmci::guest::Driver& driver) {
  const vmci::guest::Driver::RingCounts counts = driver.ring_counts();
  return {counts.direct, counts.direct_woke, counts.through_hostpeer};
}

}  // namespace bench
