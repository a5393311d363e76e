// qp_setup.h: qp_setup_rate, queue-pair set-up and tear-down cycles per
// second between a guest process and a host endpoint, beside the same
// handshake done by hand with a memfd passed over a socket.
//
// ours, one cycle, driven by the guest (the child): qpair_alloc creates a
// pair for the host (64 KiB each way); a datagram tells the host endpoint
// its handle; the host's callback attaches (qpair_alloc), detaches and
// rings the guest's doorbell; the guest's doorbell callback lets it detach,
// which frees the pair. Every call's result is checked.
// baseline, one cycle: the child makes a memfd of the same size, maps it,
// writes a mark and passes the descriptor over a SOCK_SEQPACKET socketpair;
// the parent maps it, checks the mark, unmaps and answers one byte; the
// child unmaps and closes. What a hand-made shared-memory channel costs to
// set up, with no VMCI around it.
// The parent's measuring thread sleeps through the warm-up and the window
// and reads the child's cycle count at their ends.
#pragma once

#include "endpoints.h"
#include "stream.h"
#include "trial.h"

namespace bench {

// Each queue of a set-up pair, and the baseline's memory (two queues).
inline constexpr uint64_t kSetupQueueSize = 64 * 1024;

struct SetupParams {
  double warmup_s = 0.05;
  double window_s = 0.25;
  double stall_s = 10;
};

class QpSetupBench {
 public:
  // One trial: cycles per second (Measurement::chunks counts cycles).
  Measurement run_trial(const SetupParams& params);

 private:
  EmbeddedHostpeer embedded_;  // started at construction, which throws if it cannot
};

Measurement run_memfd_handshake_trial(const SetupParams& params);

void qp_setup_child(const ChildArgs& args, Control& control);
void memfd_handshake_child(const ChildArgs& args, Control& control);

}  // namespace bench
