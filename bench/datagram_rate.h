// datagram_rate.h: datagram_rate_64B, the datagrams per second a host
// endpoint receives from a guest in another process, each send returning
// its VMCI result, beside a one-hop Unix SOCK_SEQPACKET socketpair carrying
// the same messages.
//
// ours: the parent embeds a hostpeer and holds a host endpoint with a
// datagram handle; the child connects as a guest (vmci::guest::Driver) and
// sends stamped datagrams to it in a loop. A send refused with
// VMCI_ERROR_NO_RESOURCES (the host's pending limit: it is behind) is sent
// again after one PAUSE, as a guest would; any other failure ends the
// trial. The handle's callback (the host endpoint's delivery thread)
// checks every datagram's stamps and order, and counts.
// baseline: the child send()s the same payloads into a SOCK_SEQPACKET
// socketpair, one message per call; a thread of the parent recv()s them,
// checks and counts.
// datagram_rate_64B_host_to_guest, the other way: a guest in the parent
// (vmci::guest::Driver on the embedded hostpeer's socket) holds the handle
// whose callback checks and counts; the child connects as a host
// (vmci::guest::Driver, host role, as a device proxy on the daemon does)
// and sends to it. Once hostpeer has routed the first, the host's
// datagrams take its lane to the guest (protocol 2.3).
// datagram_rate_64B_host_to_host: the same host child sends to a handle of
// the parent's embedded host endpoint; every datagram goes through
// hostpeer (there are no lanes between hosts), so this figure is the cost
// of hostpeer's own datagram path.
// Both: the consumer side is on CPU 0, the producer on CPU 1; the parent's
// measuring thread sleeps through the warm-up and the window and reads the
// count at their ends; then the producer is stopped and every datagram it
// sent must arrive.
#pragma once

#include "endpoints.h"
#include "stream.h"
#include "trial.h"

namespace bench {

struct RateParams {
  size_t payload = 64;  // bytes per datagram, >= 16
  double warmup_s = 0.05;
  double window_s = 0.25;
  double stall_s = 10;
};

class DatagramRateBench {
 public:
  // One trial with a new datagram handle, destroyed afterwards.
  Measurement run_trial(const RateParams& params);
  // One trial the other way: a host in the child sends to a new handle of
  // a guest in this process.
  Measurement run_host_to_guest_trial(const RateParams& params);
  // One trial host to host: a host in the child sends to a new handle of
  // the embedded host endpoint.
  Measurement run_host_to_host_trial(const RateParams& params);

 private:
  // A trial whose child (`transport`) sends to a new handle of `consumer`.
  Measurement run_into(vmci::Endpoint& consumer, const std::string& transport,
                       const RateParams& params);

  EmbeddedHostpeer embedded_;  // started at construction, which throws if it cannot
  std::unique_ptr<vmci::guest::Driver> guest_;  // the consumer of host-to-guest trials
};

// The baseline: one trial over a new socketpair.
Measurement run_seqpacket_trial(const RateParams& params);

// Children: a guest, or a host, sending to args' handle; a socket end
// sending.
void datagram_child(const ChildArgs& args, Control& control);
void host_datagram_child(const ChildArgs& args, Control& control);
void seqpacket_child(const ChildArgs& args, Control& control);

}  // namespace bench
