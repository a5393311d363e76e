// doorbell_rtt.h: the measured round trip of the doorbell figures, through
// the project's own API, across processes.
//
// A round trip: the host endpoint (this process, CPU 0) rings the guest's
// doorbell; the guest's callback (a child process on CPU 1, a
// vmci::guest::Driver) rings the host's doorbell back; the host's callback
// has the answer.
//
// Default, chain mode: the host's callback is the pinger. It reads the
// clock and rings the guest's doorbell for the next round itself, so a
// round trip (one host callback to the next) wakes two threads, as the
// futex ping-pong does. The measuring thread rings the first round of the
// warm-up and of the timed rounds and sleeps until each is done.
// RttParams::via_thread: the measuring thread rings every round and the
// host's callback wakes it with the answer, through a
// std::condition_variable (a third wake-up per round trip), or
// (RttParams::spin) it spins on the answer count.
//
// Handles: the host creates its doorbell with an explicit resource,
// VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, kHostDoorbellResource), and names
// it on the child's command line (--handle 2:4242); the child creates its
// own with VMCI_INVALID_HANDLE (a new handle is written back) and publishes
// it in the control page (peer_context:peer_resource, then `ready`).
//
// - embedded: the host endpoint is HostPeer::connect_host() of a hostpeer
//   embedded in this process (its I/O thread on CPU 0 with the rest of the
//   process); the guest connects to its socket.
// Each trial also reports how the rings of its timed round trips went
// (RttResult::guest_rings, host_rings, hostpeer_rings): the guest's from its
// Driver::ring_counts() (passed back in the control page), the host's from
// its Driver's (daemon) or from the embedded hostpeer's count of rings
// through it. In a ping-pong every ring finds its peer asleep, so each makes
// one FUTEX_WAKE, as the futex baseline's does.
//
// - daemon: hostpeer runs in a third process (this binary, `--child
//   hostpeer`, embedding a HostPeer as the vmci-hostpeer daemon does), on
//   RttParams::hostpeer_cpu (default CPU 0, with the host side; -1: not
//   pinned); the host endpoint is a vmci::guest::Driver connected to it
//   with role host, and the guest connects to the same socket.
#pragma once

#include <memory>

#include "rtt.h"
#include "trial.h"
#include "vmci/vmci_defs.h"

namespace vmci {
class Endpoint;
namespace host {
class HostPeer;
}
}  // namespace vmci

namespace bench {

// The host doorbell's resource id.
inline constexpr vmci_id kHostDoorbellResource = 4242;

class DoorbellBench {
 public:
  DoorbellBench();
  ~DoorbellBench();
  DoorbellBench(const DoorbellBench&) = delete;
  DoorbellBench& operator=(const DoorbellBench&) = delete;

  // One trial each, with a new guest child (and, daemon, a new hostpeer
  // child). The embedded hostpeer starts with the first embedded trial.
  RttResult run_embedded_trial(const RttParams& params);
  RttResult run_daemon_trial(const RttParams& params);

  // The embedded hostpeer and its host endpoint (started on first use).
  vmci::host::HostPeer& embedded_hostpeer();
  vmci::Endpoint& embedded_host();

 private:
  TempDir dir_;
  std::unique_ptr<vmci::host::HostPeer> hostpeer_;
  std::unique_ptr<vmci::Endpoint> host_;
};

// Child: connects as a guest to args.socket_path, creates its doorbell,
// publishes it, and rings args' host doorbell from its callback until
// stopped.
void doorbell_guest_child(const ChildArgs& args, Control& control);
// Child: serves a hostpeer on args.socket_path until stopped.
void hostpeer_child(const ChildArgs& args, Control& control);

}  // namespace bench
