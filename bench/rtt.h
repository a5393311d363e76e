// rtt.h: timing round trips, the same way for every round-trip transport.
//
// A trial runs `warmup` round trips, then `rounds` timed ones, reading the
// clock once after each (so every round trip is timed, back to back, and
// the clock costs one vDSO read per round trip), and keeps the 50th and
// 99th percentiles. Around the timed part it also counts the context
// switches (voluntary + involuntary, every thread) of each process taking
// part, read from /proc/PID/task/*/status: a cheap count of how often the
// path sleeps, which the system-call count follows closely. (The doorbell
// figures' default chain mode times its round trips from its callback's
// clock reads instead, with the same percentiles and counts: see
// doorbell_rtt.h.)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "futex.h"
#include "process.h"
#include "ring_paths.h"

namespace bench {

struct RttParams {
  int warmup = 1000;    // round trips before timing
  int rounds = 20000;   // timed round trips
  double stall_s = 10;  // no answer for this long: the trial failed
  // Doorbell figures. Default (chain mode): the host's doorbell callback
  // rings the next round itself. via_thread: a measuring thread rings each
  // round and waits for the callback's answer, on a condition variable or
  // (spin) spinning on a count.
  bool via_thread = false;
  bool spin = false;     // via_thread only
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
// calling `check` (which may throw) every `period`. Parent: stop_child().
template <typename Check>
void wait_for_stop(Control& control, Check&& check,
                   std::chrono::milliseconds period = std::chrono::milliseconds(100));
void stop_child(Control& control);

// Nearest-rank percentile `q` (0 < q <= 1) of `ns`; reorders `ns`.
double percentile(std::vector<int64_t>& ns, double q);
// Sets r.p50_ns and r.p99_ns from the round trips `ns` (not empty).
void set_percentiles(std::vector<int64_t> ns, RttResult& r);

// The context switches of a trial's processes from construction (read
// then) to finish().
class SwitchCount {
 public:
  explicit SwitchCount(std::vector<Participant> participants);
  // Sets r.switches_per_rtt (all the processes) and r.switches_detail
  // (each) over the `rounds` round trips since construction.
  void finish(int rounds, RttResult& r) const;

 private:
  std::vector<Participant> participants_;
  std::vector<uint64_t> before_;
};

// Runs the trial: `round_trip()` does one round trip and returns when the
// answer is in (it throws if there is none).
template <typename RoundTrip>
RttResult time_round_trips(const RttParams& p, const std::vector<Participant>& participants,
                           RoundTrip&& round_trip) {
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < p.warmup; ++i) round_trip();

  const SwitchCount switches(participants);
  std::vector<int64_t> ns(static_cast<size_t>(p.rounds));
  auto last = Clock::now();
  for (auto& sample : ns) {
    round_trip();
    const auto now = Clock::now();
    sample = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last).count();
    last = now;
  }
  RttResult r;
  switches.finish(p.rounds, r);
  set_percentiles(std::move(ns), r);
  return r;
}

template <typename Check>
void wait_for_stop(Control& control, Check&& check, std::chrono::milliseconds period) {
  while (control.stop.load(std::memory_order_acquire) == 0) {
    futex_wait(control.stop, 0, period);
    check();
  }
}

}  // namespace bench
