// doorbell_rtt.cc: the doorbell round-trip trials (see doorbell_rtt.h).
#include "doorbell_rtt.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "endpoints.h"
#include "stream.h"
#include "vmci/endpoint.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

// One round's clock reads (steady clock, ns): the host's ring (its
// doorbell_notify call started, and returned), the guest's callback started
// (from the control page), the host's callback started and (via-thread
// mode) the measuring thread had the answer.
struct Stamps {
  int64_t ring = 0, notified = 0, guest_callback = 0, host_callback = 0, woken = 0;
};

// Rings `guest` from `host`, stamping s.ring and s.notified; returns
// doorbell_notify's status.
int ring_guest(vmci::Endpoint& host, vmci_handle guest, Stamps& s) {
  s.ring = now_ns();
  const int status = host.doorbell_notify(guest, 0);
  s.notified = now_ns();
  return status;
}

// Watches the measuring thread's waits: late(answers) is called whenever a
// wait timed out; it calls `check` (which throws if a process died) and
// throws once `stall_s` passed with no new answer.
class StallWatch {
 public:
  StallWatch(std::function<void()> check, double stall_s)
      : check_(std::move(check)), stall_s_(stall_s) {}

  void late(uint64_t answers) {
    const auto now = Clock::now();
    if (answers != answers_) {
      answers_ = answers;
      since_ = now;
    }
    check_();
    if (std::chrono::duration<double>(now - since_).count() > stall_s_) {
      throw std::runtime_error("doorbell: no answer for " + std::to_string(stall_s_) + " s");
    }
  }

 private:
  std::function<void()> check_;
  const double stall_s_;
  uint64_t answers_ = 0;
  Clock::time_point since_ = Clock::now();
};

// The host side of a round-trip trial.
struct HostSide {
  vmci::Endpoint* endpoint;
  std::string socket_path;                   // hostpeer's
  vmci::guest::Driver* driver = nullptr;     // daemon: the endpoint, as a Driver
  vmci::host::HostPeer* embedded = nullptr;  // embedded: hostpeer, in this process
  Child* hostpeer_process = nullptr;         // daemon: hostpeer's process
};

// What both modes share: the host's doorbell (its callback is `on_answer`),
// the guest child answering it (ready, its doorbell published) and the
// control page between them. Members go in reverse: the guest is killed
// if it still runs, then the doorbell is destroyed (waiting for a running
// callback), then the control page, which callbacks read, is unmapped.
class PingTrial {
 public:
  PingTrial(const HostSide& host, vmci::DoorbellCallback on_answer)
      : host_(host),
        doorbell_{host.endpoint, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, kHostDoorbellResource)} {
    if (const int status =
            host.endpoint->doorbell_create(&doorbell_.handle, 0, 0, std::move(on_answer));
        status < VMCI_SUCCESS) {
      doorbell_.handle = VMCI_INVALID_HANDLE;
      throw std::runtime_error("host doorbell_create: " + result_text(status));
    }
    ChildArgs args;
    args.transport = "doorbell";
    args.parent = ::getpid();
    args.control_fd = control_.fd();
    args.socket_path = host.socket_path;
    args.handle_context = doorbell_.handle.context;
    args.handle_resource = doorbell_.handle.resource;
    guest_.emplace(args.to_command(), std::vector<int>{control_.fd()});
    wait_until_ready(control_.get(), *guest_);
  }

  Control& control() const { return control_.get(); }
  vmci_handle guest_doorbell() const {
    return VMCI_MAKE_HANDLE(control().peer_context, control().peer_resource);
  }
  std::vector<Participant> participants() const {
    std::vector<Participant> out{{"host", ::getpid()}, {"guest", guest_->pid()}};
    if (host_.hostpeer_process) out.push_back({"hostpeer", host_.hostpeer_process->pid()});
    return out;
  }
  // Throws if the guest or hostpeer's process died.
  void check() {
    guest_->check_running();
    if (host_.hostpeer_process) host_.hostpeer_process->check_running();
  }
  // Just before the first timed ring: the guest counts its rings from the
  // first one that reaches its callback.
  void start_timing() { control().timing.store(1, std::memory_order_release); }
  // After the timed rounds: stops the guest and takes its ring counts.
  void finish(RttResult& r) {
    stop_child(control());
    guest_->wait_success(30);
    r.guest_rings = control().guest_rings;
  }

 private:
  const HostSide& host_;
  ControlPage control_;
  DoorbellGuard doorbell_;
  std::optional<Child> guest_;
};

// The host side's ring counts over the timed round trips: its Driver's
// (daemon), or the embedded hostpeer's count of rings through it.
class HostRingCounts {
 public:
  explicit HostRingCounts(const HostSide& host) : host_(host) {}
  void start() {
    if (host_.driver) driver_before_ = ring_paths(*host_.driver);
    if (host_.embedded) hostpeer_before_ = host_.embedded->stats().doorbells_rung;
  }
  void finish(RttResult& r) const {
    if (host_.driver) r.host_rings = ring_paths(*host_.driver).since(driver_before_);
    if (host_.embedded) {
      r.hostpeer_rings = host_.embedded->stats().doorbells_rung - hostpeer_before_;
    }
  }

 private:
  const HostSide& host_;
  RingPaths driver_before_;
  uint64_t hostpeer_before_ = 0;
};

// The p50 of each stage over the timed rounds (the last params.rounds of
// `stamps`), then the guest's mean doorbell_notify call, into r.stages.
void add_stages(const std::vector<Stamps>& stamps, const RttParams& params, const Control& control,
                RttResult& r) {
  const size_t first = stamps.size() - static_cast<size_t>(params.rounds);
  auto stage = [&](const char* name, size_t from, auto&& duration) {
    std::vector<int64_t> ns;
    for (size_t i = from; i < stamps.size(); ++i) ns.push_back(duration(stamps[i], i));
    r.stages.push_back({name, percentile(ns, 0.5)});
  };
  stage("host ring -> guest callback", first,
        [](const Stamps& s, size_t) { return s.guest_callback - s.ring; });
  stage("guest callback -> host callback", first,
        [](const Stamps& s, size_t) { return s.host_callback - s.guest_callback; });
  if (params.via_thread) {
    stage("host callback -> measuring thread", first,
          [](const Stamps& s, size_t) { return s.woken - s.host_callback; });
  } else {  // the callback rings the next round (the first timed ring is the measuring thread's)
    stage("host callback -> its next ring", first + 1,
          [&](const Stamps& s, size_t i) { return s.ring - stamps[i - 1].host_callback; });
  }
  stage("host doorbell_notify call", first,
        [](const Stamps& s, size_t) { return s.notified - s.ring; });
  const int64_t calls = control.notify_calls.load(std::memory_order_relaxed);
  if (calls > 0) {  // a mean over warm-up and timed round trips
    r.stages.push_back(
        {"guest doorbell_notify call (mean)",
         static_cast<double>(control.notify_total_ns.load()) / static_cast<double>(calls)});
  }
}

// Chain mode (the default): the host's doorbell callback is the pinger, as
// the futex baseline's pinger thread is. It stamps each answer and rings
// the guest for the next round itself, so a round trip wakes two threads
// (the guest's delivery thread, then the host's), as the futex ping-pong
// wakes its ponger and its pinger. It runs in legs (the warm-up rounds,
// then the timed ones): the measuring thread rings a leg's first round and
// sleeps until the callback has the leg's last answer, which it does not
// ring on; between legs nothing is in flight.
class Chain {
 public:
  Chain(vmci::Endpoint& host, uint64_t rounds) : host_(host), stamps_(rounds) {}

  // Before the first leg: the doorbell to ring, and the control page the
  // guest stamps its callbacks in.
  void aim(vmci_handle guest, const Control& control) {
    guest_ = guest;
    control_ = &control;
  }

  // The measuring thread: rings the next round, then sleeps until the
  // rounds before `end` are answered. Throws if a ring failed, or (`watch`)
  // if a process died or the answers stalled.
  void run_until(uint64_t end, StallWatch& watch) {
    const uint64_t next = answers_.load(std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      leg_done_ = false;
    }
    leg_end_.store(end, std::memory_order_release);
    if (const int status = ring_guest(host_, guest_, stamps_.at(next)); status < VMCI_SUCCESS) {
      throw std::runtime_error("host doorbell_notify: " + result_text(status));
    }
    std::unique_lock lock(mutex_);
    while (!done_.wait_for(lock, std::chrono::milliseconds(100), [this] { return leg_done_; })) {
      watch.late(answers_.load(std::memory_order_relaxed));
    }
    if (failure_ < VMCI_SUCCESS) {
      throw std::runtime_error("host doorbell_notify, from its callback: " + result_text(failure_));
    }
  }

  // The host's doorbell callback (its endpoint's delivery thread).
  void answered() {
    const int64_t now = now_ns();
    const uint64_t n = answers_.load(std::memory_order_relaxed);  // only written here
    const uint64_t end = leg_end_.load(std::memory_order_acquire);
    if (n >= end) return;  // no round is outstanding: not an answer
    stamps_[n].host_callback = now;
    // The guest stored it before it rang back.
    stamps_[n].guest_callback = control_->callback_ns.load(std::memory_order_relaxed);
    answers_.store(n + 1, std::memory_order_relaxed);
    if (n + 1 == end) {
      end_leg(VMCI_SUCCESS);
      return;
    }
    if (const int status = ring_guest(host_, guest_, stamps_[n + 1]); status < VMCI_SUCCESS) {
      end_leg(status);
    }
  }

  // Every round's stamps (read once the last leg has ended).
  const std::vector<Stamps>& stamps() const { return stamps_; }

 private:
  void end_leg(int status) {
    {
      std::lock_guard lock(mutex_);
      failure_ = status;
      leg_done_ = true;
    }
    done_.notify_one();
  }

  vmci::Endpoint& host_;
  vmci_handle guest_ = VMCI_INVALID_HANDLE;
  const Control* control_ = nullptr;
  std::vector<Stamps> stamps_;        // round n: its ring, then its answer
  std::atomic<uint64_t> answers_{0};  // answered rounds
  std::atomic<uint64_t> leg_end_{0};  // the round the leg stops before
  std::mutex mutex_;
  std::condition_variable done_;
  bool leg_done_ = false;
  int failure_ = VMCI_SUCCESS;
};

// Chain mode's round trips from round `first` on: from one host callback to
// the next (the first one from its ring, the measuring thread's), the way
// the futex pinger times from one wake-up to the next.
std::vector<int64_t> chain_round_trips(const std::vector<Stamps>& stamps, size_t first) {
  std::vector<int64_t> ns;
  for (size_t i = first; i < stamps.size(); ++i) {
    const int64_t start = i == first ? stamps[i].ring : stamps[i - 1].host_callback;
    ns.push_back(stamps[i].host_callback - start);
  }
  return ns;
}

RttResult run_chain(const HostSide& host, const RttParams& params) {
  const auto warmup = static_cast<uint64_t>(params.warmup);
  Chain chain(*host.endpoint, warmup + static_cast<uint64_t>(params.rounds));
  PingTrial trial(host, [&chain] { chain.answered(); });
  chain.aim(trial.guest_doorbell(), trial.control());
  StallWatch watch([&trial] { trial.check(); }, params.stall_s);
  if (warmup > 0) chain.run_until(warmup, watch);

  // Between the legs, nothing in flight: the measuring thread's wake-up at
  // the end of the warm-up is outside the timed rounds. Counted with them:
  // its wake-ups to check the processes (one per 100 ms) and at the end, a
  // handful against tens of thousands of round trips (< 0.001 per round
  // trip).
  HostRingCounts host_rings(host);
  host_rings.start();
  trial.start_timing();
  const SwitchCount switches(trial.participants());
  chain.run_until(warmup + static_cast<uint64_t>(params.rounds), watch);
  RttResult r;
  switches.finish(params.rounds, r);
  host_rings.finish(r);
  trial.finish(r);
  set_percentiles(chain_round_trips(chain.stamps(), warmup), r);
  add_stages(chain.stamps(), params, trial.control(), r);
  return r;
}

// Via-thread mode: the answers the host's doorbell callback counts, and how
// the measuring thread waits for them.
class Answers {
 public:
  explicit Answers(bool spin) : spin_(spin) {}

  // The host's doorbell callback (its endpoint's delivery thread).
  void arrived() {
    last_ns_.store(now_ns(), std::memory_order_relaxed);
    if (spin_) {
      count_.fetch_add(1, std::memory_order_release);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      count_.fetch_add(1, std::memory_order_relaxed);
    }
    changed_.notify_one();
  }

  // When the host's callback last ran (steady clock, ns).
  int64_t last_ns() const { return last_ns_.load(std::memory_order_relaxed); }

  // The measuring thread: returns once `n` answers are in. Tells `watch`
  // only when an answer is late.
  void wait_for(uint64_t n, StallWatch& watch) {
    if (spin_) {
      for (unsigned turns = 1; count_.load(std::memory_order_acquire) < n; ++turns) {
        detail::cpu_relax();
        if (turns % 65536 == 0) watch.late(count_.load(std::memory_order_relaxed));
      }
      return;
    }
    std::unique_lock lock(mutex_);
    while (!changed_.wait_for(lock, std::chrono::milliseconds(50),
                              [&] { return count_.load(std::memory_order_relaxed) >= n; })) {
      watch.late(count_.load(std::memory_order_relaxed));
    }
  }

 private:
  const bool spin_;
  std::atomic<int64_t> last_ns_{0};  // when the last answer arrived
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<uint64_t> count_{0};
};

// Via-thread mode: the measuring thread rings each round and waits for the
// host callback's answer (a third wake-up per round trip, unless it spins).
RttResult run_via_thread(const HostSide& host, const RttParams& params) {
  Answers answers(params.spin);
  PingTrial trial(host, [&answers] { answers.arrived(); });
  const vmci_handle guest_doorbell = trial.guest_doorbell();
  StallWatch watch([&trial] { trial.check(); }, params.stall_s);
  HostRingCounts host_rings(host);
  std::vector<Stamps> stamps;
  stamps.reserve(static_cast<size_t>(params.warmup + params.rounds));
  uint64_t rings = 0;
  RttResult r = time_round_trips(params, trial.participants(), [&] {
    if (++rings == static_cast<uint64_t>(params.warmup) + 1) {  // the first timed one
      host_rings.start();
      trial.start_timing();
    }
    Stamps s;
    if (const int status = ring_guest(*host.endpoint, guest_doorbell, s); status < VMCI_SUCCESS) {
      throw std::runtime_error("host doorbell_notify: " + result_text(status));
    }
    answers.wait_for(rings, watch);
    s.woken = now_ns();
    s.guest_callback = trial.control().callback_ns.load(std::memory_order_relaxed);
    s.host_callback = answers.last_ns();
    stamps.push_back(s);
  });
  host_rings.finish(r);
  trial.finish(r);
  add_stages(stamps, params, trial.control(), r);
  return r;
}

// The trial proper, from `host`, in the mode `params` asks for.
RttResult ping_guest(const HostSide& host, const RttParams& params) {
  return params.via_thread ? run_via_thread(host, params) : run_chain(host, params);
}

}  // namespace

DoorbellBench::DoorbellBench() = default;

DoorbellBench::~DoorbellBench() {
  host_.reset();  // before its hostpeer
}

vmci::host::HostPeer& DoorbellBench::embedded_hostpeer() {
  if (!hostpeer_) {
    hostpeer_ = start_hostpeer(dir_.path() + "/hp.sock");
    host_ = hostpeer_->connect_host();
    if (!host_) throw std::runtime_error("hostpeer: no host endpoint");
  }
  return *hostpeer_;
}

vmci::Endpoint& DoorbellBench::embedded_host() {
  embedded_hostpeer();
  return *host_;
}

RttResult DoorbellBench::run_embedded_trial(const RttParams& params) {
  return ping_guest(
      {&embedded_host(), embedded_hostpeer().socket_path(), nullptr, &embedded_hostpeer(), nullptr},
      params);
}

RttResult DoorbellBench::run_daemon_trial(const RttParams& params) {
  HostpeerDaemon hostpeer(params.hostpeer_cpu);
  auto host = connect_driver(hostpeer.socket_path(), vmci::proto::Role::kHost);
  const RttResult r = ping_guest(
      {host.get(), hostpeer.socket_path(), host.get(), nullptr, &hostpeer.child()}, params);
  host.reset();
  hostpeer.stop(30);
  return r;
}

void doorbell_guest_child(const ChildArgs& args, Control& control) {
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);

  const vmci_handle host_doorbell = VMCI_MAKE_HANDLE(args.handle_context, args.handle_resource);
  std::atomic<int> failure{VMCI_SUCCESS};
  vmci::Endpoint* endpoint = guest.get();
  // The ring counts when the first timed round trip reached the callback.
  std::optional<RingPaths> timed_from;
  DoorbellGuard mine{endpoint};
  const int status = guest->doorbell_create(&mine.handle, 0, 0, [&] {
    const int64_t start = now_ns();
    control.callback_ns.store(start, std::memory_order_relaxed);
    if (!timed_from && control.timing.load(std::memory_order_acquire) != 0) {
      timed_from = ring_paths(*guest);
    }
    const int s = endpoint->doorbell_notify(host_doorbell, 0);
    control.notify_total_ns.fetch_add(now_ns() - start, std::memory_order_relaxed);
    control.notify_calls.fetch_add(1, std::memory_order_relaxed);
    if (s < VMCI_SUCCESS) failure.store(s, std::memory_order_relaxed);
  });
  if (status < VMCI_SUCCESS) {
    mine.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("guest doorbell_create: " + result_text(status));
  }
  control.peer_context = mine.handle.context;
  control.peer_resource = mine.handle.resource;
  say_ready(control);
  wait_for_stop(control, [&] {
    if (const int s = failure.load(std::memory_order_relaxed); s < VMCI_SUCCESS) {
      throw std::runtime_error("guest doorbell_notify: " + result_text(s));
    }
  });
  mine.destroy();  // no callback runs from here on
  if (timed_from) control.guest_rings = ring_paths(*guest).since(*timed_from);
}

void hostpeer_child(const ChildArgs& args, Control& control) {
  auto hostpeer = start_hostpeer(args.socket_path);
  say_ready(control);
  // Nothing to check: the process sleeps (so that an idle hostpeer's
  // process makes no wake-ups at all: scale_64_guests counts them).
  wait_for_stop(control, [] {}, std::chrono::hours(24));
}

}  // namespace bench
