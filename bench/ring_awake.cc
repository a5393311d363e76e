// ring_awake.cc: the doorbell_ring_awake trials (see ring_awake.h).
#include "ring_awake.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <string>

#include "endpoints.h"
#include "futex.h"
#include "rtt.h"
#include "stream.h"
#include "vmci/endpoint.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long a child waits for the parent's owner to get busy.
constexpr double kChildStallS = 30;

Clock::time_point after_seconds(double s) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// --- the handshake in the control page, both figures alike -------------

// Parent, its owner awake: says so and wakes the child.
void say_busy(Control& control) {
  control.host_busy.store(1, std::memory_order_release);
  futex_wake(control.host_busy);
}

// Parent, the owner's thread: spins until the child is done, or until
// `keep_going()` (asked now and then) says to give up.
template <typename KeepGoing>
void stay_busy(Control& control, KeepGoing&& keep_going) {
  for (unsigned turns = 1; control.guest_done.load(std::memory_order_acquire) == 0; ++turns) {
    detail::cpu_relax();
    if (turns % 4096 == 0 && !keep_going()) return;
  }
}

// Parent: sleeps until the child is done; throws if it dies first or takes
// longer than `stall_s`.
void wait_until_done(Control& control, Child& child, double stall_s) {
  const auto deadline = after_seconds(stall_s);
  while (control.guest_done.load(std::memory_order_acquire) == 0) {
    futex_wait(control.guest_done, 0, std::chrono::milliseconds(50));
    child.check_running();
    if (Clock::now() > deadline) {
      throw std::runtime_error("ring_awake: the child did not finish in " +
                               std::to_string(stall_s) + " s");
    }
  }
}

// Parent, once done: what the child reported.
RingAwakeResult collect(const Control& control) {
  RingAwakeResult r;
  r.paths = control.guest_rings;
  r.timed_rings = control.timed_rings;
  if (r.timed_rings > 0) {
    r.ns_per_ring =
        static_cast<double>(control.timed_rings_ns) / static_cast<double>(r.timed_rings);
  }
  return r;
}

// Child: sleeps until the parent's owner is busy. False if the parent
// stopped the trial first; throws after kChildStallS.
bool wait_for_busy_host(Control& control) {
  const auto deadline = after_seconds(kChildStallS);
  while (control.host_busy.load(std::memory_order_acquire) == 0) {
    if (control.stop.load(std::memory_order_acquire) != 0) return false;
    if (Clock::now() > deadline) throw std::runtime_error("the host never got busy");
    futex_wait(control.host_busy, 0, std::chrono::milliseconds(50));
  }
  return true;
}

// Child: publishes its results and wakes the parent.
void say_done(Control& control, const RingPaths& paths, uint64_t timed_rings, int64_t ns) {
  control.guest_rings = paths;
  control.timed_rings = timed_rings;
  control.timed_rings_ns = ns;
  control.guest_done.store(1, std::memory_order_release);
  futex_wake(control.guest_done);
}

// Child: the whole ringing, `ring()` being one ring: one first, then the
// rest timed once the owner is busy; `report(timed, ns)` then says done.
template <typename Ring, typename Report>
void ring_while_host_busy(Control& control, uint64_t rings, Ring&& ring, Report&& report) {
  ring();
  if (!wait_for_busy_host(control)) return;
  const int64_t start = now_ns();
  for (uint64_t i = 1; i < rings; ++i) ring();
  report(rings - 1, now_ns() - start);
}

// --- ours ------------------------------------------------------------------

// The host doorbell's callback: on its first call it says the owner is
// busy and stays busy (spinning on the delivery thread) until the guest is
// done or release() is called; later calls return at once.
class BusyOwner {
 public:
  explicit BusyOwner(Control& control) : control_(control) {}
  void on_ring() {
    if (rung_++ > 0) return;
    say_busy(control_);
    stay_busy(control_, [this] { return !released_.load(std::memory_order_relaxed); });
  }
  void release() { released_.store(true, std::memory_order_relaxed); }

 private:
  Control& control_;
  uint64_t rung_ = 0;  // the delivery thread's
  std::atomic<bool> released_{false};
};

// Releases the owner when the trial ends, however it ends (so that the
// doorbell's destruction does not wait for a callback spinning forever).
struct ReleaseOnExit {
  BusyOwner& owner;
  ~ReleaseOnExit() { owner.release(); }
};

// --- baseline ---------------------------------------------------------------

struct RawRingWords {
  alignas(128) std::atomic<uint32_t> slot{0};      // rung by the child
  alignas(128) std::atomic<uint32_t> sleepers{0};  // the owner's: it sleeps on slot
};
constexpr size_t kRawRingSize = 4096;
static_assert(sizeof(RawRingWords) <= kRawRingSize);

// One raw ring: set the bit, then the eventcount check. Returns 1 if it
// made a FUTEX_WAKE (someone slept), else 0.
inline uint64_t raw_ring(RawRingWords& words) {
  words.slot.fetch_or(1, std::memory_order_seq_cst);
  if (words.sleepers.load(std::memory_order_seq_cst) == 0) return 0;
  futex_wake(words.slot, INT32_MAX);
  return 1;
}

// Parent: sleeps on the slot until the first ring; it announced itself in
// sleepers before the child started (the owner waits for rings from the
// start, as the host's delivery thread does), and leaves it now.
void sleep_until_rung(RawRingWords& words, Child& child, double stall_s) {
  const auto deadline = after_seconds(stall_s);
  while (words.slot.load(std::memory_order_seq_cst) == 0) {
    futex_wait(words.slot, 0, std::chrono::milliseconds(50));
    child.check_running();
    if (Clock::now() > deadline) throw std::runtime_error("raw ring: no first ring");
  }
  words.sleepers.fetch_sub(1, std::memory_order_seq_cst);
}

ChildArgs ringer_args(const char* transport, const ControlPage& control, uint64_t rings) {
  ChildArgs args;
  args.transport = transport;
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.rings = rings;
  return args;
}

}  // namespace

RingAwakeResult run_ring_awake_trial(vmci::host::HostPeer& hostpeer, vmci::Endpoint& host,
                                     const RingAwakeParams& params) {
  ControlPage control;
  BusyOwner owner(control.get());
  DoorbellGuard doorbell{&host, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, kAwakeDoorbellResource)};
  if (const int status =
          host.doorbell_create(&doorbell.handle, 0, 0, [&owner] { owner.on_ring(); });
      status < VMCI_SUCCESS) {
    doorbell.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("host doorbell_create: " + result_text(status));
  }
  const ReleaseOnExit release{owner};  // destroyed before the doorbell

  ChildArgs args = ringer_args("doorbell-ringer", control, params.rings);
  args.socket_path = hostpeer.socket_path();
  args.handle_context = doorbell.handle.context;
  args.handle_resource = doorbell.handle.resource;
  const uint64_t rung_before = hostpeer.stats().doorbells_rung;
  Child guest(args.to_command(), {control.fd()});
  wait_until_ready(control.get(), guest);
  wait_until_done(control.get(), guest, params.stall_s);
  RingAwakeResult r = collect(control.get());
  r.hostpeer_rings = hostpeer.stats().doorbells_rung - rung_before;
  stop_child(control.get());
  guest.wait_success(30);
  return r;
}

RingAwakeResult run_raw_ring_trial(const RingAwakeParams& params) {
  ControlPage control;
  UniqueFd memory_fd = make_memfd("vmci-bench-raw-ring", kRawRingSize);
  Mapping memory(memory_fd.get(), kRawRingSize);
  auto* words = new (memory.data()) RawRingWords();
  words->sleepers.store(1, std::memory_order_seq_cst);  // see sleep_until_rung

  ChildArgs args = ringer_args("raw-ringer", control, params.rings);
  args.data_fd = memory_fd.get();
  Child child(args.to_command(), {control.fd(), memory_fd.get()});
  wait_until_ready(control.get(), child);
  sleep_until_rung(*words, child, params.stall_s);
  say_busy(control.get());
  const auto deadline = after_seconds(params.stall_s);
  stay_busy(control.get(), [&] {
    child.check_running();
    return Clock::now() < deadline;
  });
  wait_until_done(control.get(), child, params.stall_s);
  const RingAwakeResult r = collect(control.get());
  stop_child(control.get());
  child.wait_success(30);
  return r;
}

void doorbell_ringer_child(const ChildArgs& args, Control& control) {
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);
  const vmci_handle host_doorbell = VMCI_MAKE_HANDLE(args.handle_context, args.handle_resource);
  say_ready(control);
  const RingPaths before = ring_paths(*guest);
  auto ring = [&] {
    if (const int s = guest->doorbell_notify(host_doorbell, 0); s < VMCI_SUCCESS) {
      throw std::runtime_error("guest doorbell_notify: " + result_text(s));
    }
  };
  ring_while_host_busy(control, args.rings, ring, [&](uint64_t timed, int64_t ns) {
    say_done(control, ring_paths(*guest).since(before), timed, ns);
  });
  wait_for_stop(control, [] {});
}

void raw_ringer_child(const ChildArgs& args, Control& control) {
  if (fd_size(args.data_fd) < kRawRingSize) throw std::runtime_error("raw ring too small");
  Mapping memory(args.data_fd, kRawRingSize);
  auto& words = *reinterpret_cast<RawRingWords*>(memory.data());
  say_ready(control);
  uint64_t woke = 0;
  ring_while_host_busy(
      control, args.rings, [&] { woke += raw_ring(words); },
      [&](uint64_t timed, int64_t ns) {
        say_done(control, RingPaths{args.rings - woke, woke, 0}, timed, ns);
      });
  wait_for_stop(control, [] {});
}

}  // namespace bench
