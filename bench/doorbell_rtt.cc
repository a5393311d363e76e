// doorbell_rtt.cc: the doorbell round-trip trials (see doorbell_rtt.h).
#include "doorbell_rtt.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
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

std::string result_text(int64_t result) { return vmci::proto::describe_result(result); }

// The answers the host's doorbell callback counts, and how the measuring
// thread waits for them.
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

  // The measuring thread: returns once `n` answers are in. Calls `check`
  // (which throws if a process died) only when an answer is late, and
  // throws after `stall_s` without one.
  template <typename Check>
  void wait_for(uint64_t n, Check&& check, double stall_s) {
    Clock::time_point since{};
    auto late = [&] {
      const auto now = Clock::now();
      if (since == Clock::time_point{}) since = now;
      check();
      if (std::chrono::duration<double>(now - since).count() > stall_s) {
        throw std::runtime_error("doorbell: no answer for " + std::to_string(stall_s) + " s");
      }
    };
    if (spin_) {
      for (unsigned turns = 1; count_.load(std::memory_order_acquire) < n; ++turns) {
        detail::cpu_relax();
        if (turns % 65536 == 0) late();
      }
      return;
    }
    std::unique_lock lock(mutex_);
    while (!changed_.wait_for(lock, std::chrono::milliseconds(50),
                              [&] { return count_.load(std::memory_order_relaxed) >= n; })) {
      late();
    }
  }

 private:
  const bool spin_;
  std::atomic<int64_t> last_ns_{0};  // when the last answer arrived
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<uint64_t> count_{0};
};

// The host side of a round-trip trial.
struct HostSide {
  vmci::Endpoint* endpoint;
  std::string socket_path;                   // hostpeer's
  vmci::guest::Driver* driver = nullptr;     // daemon: the endpoint, as a Driver
  vmci::host::HostPeer* embedded = nullptr;  // embedded: hostpeer, in this process
  Child* hostpeer_process = nullptr;         // daemon: hostpeer's process
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

// The trial proper, from `host`.
RttResult ping_guest(const HostSide& host, const RttParams& params) {
  Answers answers(params.spin);
  DoorbellGuard host_doorbell{host.endpoint,
                              VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, kHostDoorbellResource)};
  if (const int status = host.endpoint->doorbell_create(&host_doorbell.handle, 0, 0,
                                                        [&answers] { answers.arrived(); });
      status < VMCI_SUCCESS) {
    host_doorbell.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("host doorbell_create: " + result_text(status));
  }

  ControlPage control;
  ChildArgs args;
  args.transport = "doorbell";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.socket_path = host.socket_path;
  args.handle_context = host_doorbell.handle.context;
  args.handle_resource = host_doorbell.handle.resource;
  Child guest(args.to_command(), {control.fd()});
  wait_until_ready(control.get(), guest);
  const vmci_handle guest_doorbell =
      VMCI_MAKE_HANDLE(control.get().peer_context, control.get().peer_resource);

  Child* hostpeer = host.hostpeer_process;
  std::vector<Participant> participants{{"host", ::getpid()}, {"guest", guest.pid()}};
  if (hostpeer) participants.push_back({"hostpeer", hostpeer->pid()});
  auto check = [&] {
    guest.check_running();
    if (hostpeer) hostpeer->check_running();
  };
  HostRingCounts host_rings(host);
  // Per round trip: the host rings; its doorbell_notify returns; the
  // guest's callback starts; the host's callback starts; the measuring
  // thread has the answer. A few clock reads (~25 ns each) beside the
  // round trip's tens of microseconds.
  struct Stamps {
    int64_t ring, notified, guest_callback, host_callback, woken;
  };
  std::vector<Stamps> stamps;
  stamps.reserve(static_cast<size_t>(params.warmup + params.rounds));
  uint64_t rings = 0;
  RttResult r = time_round_trips(params, participants, [&] {
    if (++rings == static_cast<uint64_t>(params.warmup) + 1) {  // the first timed one
      host_rings.start();
      control.get().timing.store(1, std::memory_order_release);
    }
    Stamps s;
    s.ring = now_ns();
    if (const int status = host.endpoint->doorbell_notify(guest_doorbell, 0);
        status < VMCI_SUCCESS) {
      throw std::runtime_error("host doorbell_notify: " + result_text(status));
    }
    s.notified = now_ns();
    answers.wait_for(rings, check, params.stall_s);
    s.woken = now_ns();
    s.guest_callback = control.get().callback_ns.load(std::memory_order_relaxed);
    s.host_callback = answers.last_ns();
    stamps.push_back(s);
  });
  host_rings.finish(r);
  stop_child(control.get());
  guest.wait_success(30);
  r.guest_rings = control.get().guest_rings;

  // The stages of the timed round trips.
  const auto timed = stamps.end() - params.rounds;
  auto stage = [&](const char* name, auto&& duration) {
    std::vector<int64_t> ns;
    for (auto it = timed; it != stamps.end(); ++it) ns.push_back(duration(*it));
    r.stages.push_back({name, percentile(ns, 0.5)});
  };
  stage("host ring -> guest callback", [](const Stamps& s) { return s.guest_callback - s.ring; });
  stage("guest callback -> host callback",
        [](const Stamps& s) { return s.host_callback - s.guest_callback; });
  stage("host callback -> measuring thread",
        [](const Stamps& s) { return s.woken - s.host_callback; });
  stage("host doorbell_notify call", [](const Stamps& s) { return s.notified - s.ring; });
  const int64_t calls = control.get().notify_calls.load(std::memory_order_relaxed);
  if (calls > 0) {  // a mean over warm-up and timed round trips
    r.stages.push_back({"guest doorbell_notify call (mean)",
                        static_cast<double>(control.get().notify_total_ns.load()) /
                            static_cast<double>(calls)});
  }
  return r;
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
  TempDir dir;
  ControlPage control;
  ChildArgs args;
  args.transport = "hostpeer";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.socket_path = dir.path() + "/hp.sock";
  args.cpu = params.hostpeer_cpu;
  Child hostpeer(args.to_command(), {control.fd()});
  wait_until_ready(control.get(), hostpeer);

  auto host = connect_driver(args.socket_path, vmci::proto::Role::kHost);
  const RttResult r =
      ping_guest({host.get(), args.socket_path, host.get(), nullptr, &hostpeer}, params);
  host.reset();
  stop_child(control.get());
  hostpeer.wait_success(30);
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
  wait_for_stop(control, [] {});
}

}  // namespace bench
