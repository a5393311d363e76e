// vsock_bench.h: ours of the vSockets figures: the project's vSockets
// streams (vmci::vsock::Transport) between a guest process and a host
// endpoint, each side with its own Transport.
//
// The bench embeds a hostpeer (socket in a temp dir) and opens vSockets on
// its host endpoint (HostPeer::connect_host()) once, for every trial (on a
// host, one endpoint is vSockets: its control handle, resource 1, takes
// any context). Per trial the host listens on an ephemeral port and starts
// a child, this binary as `--child vsock-...`, which connects to hostpeer as
// a guest (vmci::guest::Driver), opens its own Transport and connects to
// VMCI_HOST_CONTEXT_ID:port. The host side (this process, hostpeer's
// threads included) is on kConsumerCpu, the guest on kProducerCpu. Nothing
// polls: a blocked read, write, accept or connect sleeps until a control
// packet (WROTE, READ, ...) or an event wakes it.
//
// - vsock_stream_64KiB (run_stream_trial): the guest writes 64 KiB chunks
//   with blocking write_some; the host reads them with blocking read_some
//   into a chunk buffer; stream.h's loops, with every byte checked
//   (StreamParams::every_byte), warm-up, window and drain; then the guest
//   shuts down sending.
// - vsock_rr_64B (run_rr_trial): the host writes a 64-byte request and
//   blocks in read_some until the 64-byte answer is in; the guest blocks in
//   read_some for the request and writes the answer (messages.h: each side
//   checks every byte). rtt.h times every round trip.
// - vsock_connect_rate (run_connect_trial): the guest connects, reads until
//   the end of the stream and closes, in a loop, counting cycles in the
//   control page; a thread of this process accepts and closes. count_window.h
//   measures.
// - vsock_idle_64 (run_idle_trial): the guest connects `connections` times
//   and sleeps (no timeout) until stopped; the host accepts them all, lets
//   them settle, then measures both sides over the idle window
//   (idle_cost.h): every thread of the guest, and host_threads() (the
//   embedded hostpeer's and its host endpoint's, where the host's vSockets
//   run; not the other figures' hostpeers in this process).
//
//   bench::VsockBench vsock;
//   bench::Measurement m = vsock.run_stream_trial(params);  // params.every_byte set
#pragma once

#include <sys/types.h>

#include <memory>
#include <set>

#include "count_window.h"
#include "endpoints.h"
#include "rtt.h"
#include "stream.h"
#include "idle_cost.h"
#include "trial.h"

namespace vmci::vsock {
class Transport;
}

namespace bench {

class VsockBench {
 public:
  // Starts the embedded hostpeer, its host endpoint and its vSockets;
  // throws std::runtime_error if it cannot.
  VsockBench();
  ~VsockBench();
  VsockBench(const VsockBench&) = delete;
  VsockBench& operator=(const VsockBench&) = delete;

  // One trial each, with a new guest child. Each throws std::runtime_error
  // if the trial failed (a byte did not match, the child died, a call
  // failed).
  Measurement run_stream_trial(const StreamParams& params);
  RttResult run_rr_trial(const RttParams& params, size_t message);
  Measurement run_connect_trial(const CountWindow& window);
  IdleCost run_idle_trial(const IdleParams& params);

  // The threads that serve the host side's vSockets: the embedded
  // hostpeer's and its host endpoint's, which construction started (they
  // start no others later).
  const std::set<pid_t>& host_threads() const { return host_threads_; }

 private:
  std::set<pid_t> threads_before_;  // this process's, before the rest was made
  EmbeddedHostpeer embedded_;
  std::shared_ptr<vmci::vsock::Transport> vsock_;
  std::set<pid_t> host_threads_;
};

// Children (trial.cc dispatches them).
void vsock_stream_child(const ChildArgs& args, Control& control);
void vsock_rr_child(const ChildArgs& args, Control& control);
void vsock_connect_child(const ChildArgs& args, Control& control);
void vsock_idle_child(const ChildArgs& args, Control& control);

}  // namespace bench
