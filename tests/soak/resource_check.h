// resource_check.h: the soak's view of the vmci-hostpeer daemon from the
// outside: the process itself (started on a private socket, stopped with
// SIGTERM), its memory over time, its descriptors, what it says it holds
// (the kStats frame), and /dev/shm.
//
//   HostpeerDaemon daemon(path, &error);         // socket in a private temp dir
//   RssSampler rss(daemon.pid());                // samples VmRSS every second
//   ... the soak ...
//   auto problems = stats_left_over(stats, {.host_doorbells = 1});
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "vmci/proto/frame.h"

namespace vmci::soak {

using testing::ChildOptions;
using testing::ChildProcess;
using testing::describe_wait_status;

// vmci-hostpeer as a child process, its socket and log in a private
// temporary directory (removed at destruction).
class HostpeerDaemon {
 public:
  // Starts it and waits (up to 10 s) until its socket answers; null and
  // *error if it does not.
  static std::unique_ptr<HostpeerDaemon> start(const std::string& binary, std::string* error);
  ~HostpeerDaemon();

  const std::string& socket_path() const { return socket_; }
  const std::string& log_path() const { return log_; }
  pid_t pid() const { return process_->pid(); }
  bool running() { return process_->running(); }
  std::string exit_description() const { return describe_wait_status(process_->exit_status()); }
  // SIGTERM, then waits up to 15 s: the wait status, or -1.
  int stop();
  // The last `lines` lines of its log (stderr).
  std::string log_tail(size_t lines) const;

 private:
  HostpeerDaemon() = default;
  std::string dir_, socket_, log_;
  std::unique_ptr<ChildProcess> process_;
};

// VmRSS of a process, sampled every second from its own thread.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid);
  ~RssSampler();
  // Samples taken so far, in KiB.
  std::vector<uint64_t> samples() const;
  // Stops sampling (also done at destruction).
  void stop();

 private:
  void run();
  const pid_t pid_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> samples_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A /proc/PID/status field in KiB (VmRSS, ...) or count (Threads); -1 if absent.
int64_t proc_status_field(pid_t pid, const std::string& field);
// Open descriptors of a process: number -> what it points at (empty if
// unreadable).
std::map<std::string, std::string> open_fds(pid_t pid);
// The names in /dev/shm.
std::set<std::string> shm_listing();

// Whether the RSS series is flat: the last `tail` samples at most
// `slack_kib` above the median of the samples after the first `warmup`.
struct RssVerdict {
  bool flat = true;
  uint64_t median_kib = 0;
  uint64_t last_kib = 0;
  std::string detail;
};
RssVerdict judge_rss(const std::vector<uint64_t>& samples, size_t warmup, size_t tail,
                     uint64_t slack_kib);

// What hostpeer may still hold when the soak is over.
struct ExpectedHoldings {
  uint64_t host_connections = 1;
  uint64_t host_datagram_handles = 0;
  uint64_t host_doorbells = 0;
};
// Each holding that differs from the expected ones ("queue_pairs = 3, expected 0").
std::vector<std::string> stats_left_over(const proto::StatsBody& stats,
                                         const ExpectedHoldings& expected);
std::string describe_stats(const proto::StatsBody& stats);

}  // namespace vmci::soak
