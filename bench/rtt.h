// rtt.h: timing round trips, the same way for every round-trip transport.
//
// A trial runs `warmup` round trips, then `rounds` timed ones, reading the
// clock once after each (so every round trip is timed, back to back, and
// the clock costs one vDSO read per round trip), and keeps the 50th and
// 99th percentiles. Around the timed part it also counts the context
// switches (voluntary + involuntary, every thread) of each process taking
// part, read from /proc/PID/task/*/status: a cheap count of how often the
// path sleeps, which the system-call count follows closely.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "futex.h"
#include "process.h"
#include "ring_paths.h"

namespace bench {

struct RttParams {
  int warmup = 1000;   // round trips before timing
  int rounds = 20000;  // timed round trips
  double stall_s = 10;  // no answer for this long: the trial failed
  bool spin = false;    // doorbell figures: the measuring thread spins (else a condition variable)
  int hostpeer_cpu = 0;  // doorbell_rtt_daemon: hostpeer's CPU, -1 unpinned
};

// Where a doorbell round trip's time goes: the median of one stage.
struct Stage {
  std::string name;
  double p50_ns = 0;
};

struct RttResult {
  double p50_ns = 0;
  double p99_ns = 0;
  double switches_per_rtt = 0;  // all the trial's processes together
  std::string switches_detail;  // per process, e.g. "host 2.00 + guest 3.00"
  std::vector<Stage> stages;    // doorbell trials only
  // Doorbell trials, over the timed round trips: how each side's rings went
  // (the host's only when it is a Driver: daemon), and (embedded) how many
  // rings went through hostpeer, both sides' (HostPeer::stats()).
  std::optional<RingPaths> guest_rings, host_rings;
  std::optional<uint64_t> hostpeer_rings;
};

// The steady clock (CLOCK_MONOTONIC: the same in every process), in ns.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A process taking part in a trial, for counting its context switches.
struct Participant {
  std::string label;
  pid_t pid;
};

// Voluntary + involuntary context switches of every thread of `pid` so far
// (threads that have exited are not counted: none exits while timing).
uint64_t context_switches(pid_t pid);

// Parent: waits (sleeping; nothing is timed yet) until the child has set
// control.ready; throws if it dies first or takes longer than `timeout_s`.
void wait_until_ready(Control& control, Child& child, double timeout_s = 30);
// Child: sets control.ready.
void say_ready(Control& control);
// Child: sleeps on control.stop (FUTEX_WAIT) until the parent sets it,
// calling `check` (which may throw) every 100 ms. Parent: stop_child().
template <typename Check>
void wait_for_stop(Control& control, Check&& check);
void stop_child(Control& control);

// Nearest-rank percentile `q` (0 < q <= 1) of `ns`; reorders `ns`.
double percentile(std::vector<int64_t>& ns, double q);

// Runs the trial: `round_trip()` does one round trip and returns when the
// answer is in (it throws if there is none).
template <typename RoundTrip>
RttResult time_round_trips(const RttParams& p, const std::vector<Participant>& participants,
                           RoundTrip&& round_trip) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < p.warmup; ++i) round_trip();

  std::vector<uint64_t> before;
  for (const Participant& who : participants) before.push_back(context_switches(who.pid));
  std::vector<int64_t> ns(static_cast<size_t>(p.rounds));
  auto last = Clock::now();
  for (auto& sample : ns) {
    round_trip();
    const auto now = Clock::now();
    sample = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
    last = now;
  }
  RttResult r;
  for (size_t i = 0; i < participants.size(); ++i) {
    const double per_rtt = static_cast<double>(context_switches(participants[i].pid) - before[i]) /
                           static_cast<double>(p.rounds);
    r.switches_per_rtt += per_rtt;
    char text[64];
    std::snprintf(text, sizeof text, "%s%s %.2f", i ? " + " : "", participants[i].label.c_str(),
                  per_rtt);
    r.switches_detail += text;
  }
  r.p50_ns = percentile(ns, 0.50);
  r.p99_ns = percentile(ns, 0.99);
  return r;
}

template <typename Check>
void wait_for_stop(Control& control, Check&& check) {
  while (control.stop.load(std::memory_order_acquire) == 0) {
    futex_wait(control.stop, 0, std::chrono::milliseconds(100));
    check();
  }
}

}  // namespace bench
