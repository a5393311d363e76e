// qpair_throughput.h: the measured path, a VMCI queue pair through the
// project's own API, across processes.
//
// The parent embeds a hostpeer serving a socket in a temp dir, takes a host
// endpoint and, for each trial, creates a pair (1 MiB each way). The child
// connects as a guest (vmci::guest::Driver), attaches to the pair with the
// sizes swapped and enqueues; the host endpoint dequeues. The guest is the
// producer because a host endpoint's enqueue fails with
// QUEUEPAIR_NOTATTACHED until the guest has attached.
#pragma once

#include "endpoints.h"
#include "stream.h"
#include "trial.h"

namespace bench {

// The size of each queue of the pair, in bytes.
inline constexpr uint64_t kPairQueueSize = 1 << 20;

class QpairBench {
 public:
  // One trial on a new pair, detached afterwards.
  Measurement run_trial(const StreamParams& params);

 private:
  EmbeddedHostpeer embedded_;  // started at construction, which throws if it cannot
};

// Child: connects as a guest, attaches to args' pair and enqueues.
void qpair_child(const ChildArgs& args, Control& control);

}  // namespace bench
