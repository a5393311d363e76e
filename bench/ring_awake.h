// ring_awake.h: the doorbell_ring_awake figure: what a doorbell ring costs
// the ringer while the doorbell's owner is awake, and how many of the rings
// make a system call (the fast path's claim: none but the first).
//
// - ours: a guest child (a vmci::guest::Driver, CPU 1) rings a doorbell of
//   the host endpoint (HostPeer::connect_host() of the hostpeer embedded in
//   this process, CPU 0) `rings` times. The first ring goes to hostpeer,
//   which grants the guest a ring-channel slot and wakes the host's delivery
//   thread; the host's callback, on its first call, says so in the control
//   page (host_busy) and spins until the guest is done, so the owner is
//   awake and not waiting for rings. The guest sleeps until host_busy, then
//   makes the other rings - 1 doorbell_notify calls back to back, timing
//   them, and reports its Driver::ring_counts() over all its rings.
// - baseline shm_fetch_or_ring: the same, with nothing of VMCI: the same
//   pair of processes on the same CPUs share a memfd with a slot word and a
//   sleepers word on separate cache lines. A ring is a fetch_or on the slot
//   and the eventcount check (a load of sleepers; a FUTEX_WAKE on the slot
//   if anyone sleeps). This process's main thread sleeps on the slot
//   (sleepers = 1) until the first ring, says host_busy and spins until the
//   child is done, as the host's callback does.
#pragma once

#include <cstdint>
#include <optional>

#include "ring_paths.h"
#include "trial.h"
#include "vmci/vmci_defs.h"

namespace vmci {
class Endpoint;
namespace host {
class HostPeer;
}
}  // namespace vmci

namespace bench {

// The host doorbell's resource id (not the round trips': those are gone by
// then, but a different one keeps the figures apart in logs).
inline constexpr vmci_id kAwakeDoorbellResource = 4243;

struct RingAwakeParams {
  uint64_t rings = 200000;  // per trial, the first included (at least 2)
  double stall_s = 10;      // a trial that takes longer failed
};

struct RingAwakeResult {
  // How all the child's rings went (baseline: direct = no system call,
  // direct_woke = a FUTEX_WAKE, through_hostpeer = 0).
  RingPaths paths;
  uint64_t timed_rings = 0;                // all but the first: rung while the owner was busy
  double ns_per_ring = 0;                  // their mean time per ring (doorbell_notify call)
  std::optional<uint64_t> hostpeer_rings;  // ours: rings through hostpeer (its stats)

  // Rings that made a system call, per ring.
  double system_calls_per_ring() const {
    return paths.total()
               ? static_cast<double>(paths.with_system_calls()) / static_cast<double>(paths.total())
               : 0;
  }
};

// One trial each, with a new child. `hostpeer` and `host`: the embedded
// hostpeer and its host endpoint.
RingAwakeResult run_ring_awake_trial(vmci::host::HostPeer& hostpeer, vmci::Endpoint& host,
                                     const RingAwakeParams& params);
RingAwakeResult run_raw_ring_trial(const RingAwakeParams& params);

// Children: ring args.rings times as above, report, wait to be stopped.
void doorbell_ringer_child(const ChildArgs& args, Control& control);
void raw_ringer_child(const ChildArgs& args, Control& control);

}  // namespace bench
