// ring_baseline.h: baseline A, a raw shared-memory single-producer
// single-consumer byte ring: what a queue pair's data path would cost with
// nothing of VMCI around it.
//
// 1 MiB of data in a memfd the child inherits over exec; 64-bit free-running
// head and tail, each on its own cache line (128 bytes apart, past the
// adjacent-line prefetcher); the data is copied before the tail is published
// with a release store, the peer's index is read with an acquire load, and
// each side keeps a copy of the peer's index and reads the shared one only
// when its copy does not show room (data) for the whole request.
#pragma once

#include "stream.h"
#include "trial.h"

namespace bench {

inline constexpr size_t kRingSize = 1 << 20;

// Parent: one trial, the child producing, this process consuming.
Measurement run_ring_trial(const StreamParams& params);
// Child: produces into the ring named by args.data_fd.
void ring_child(const ChildArgs& args, Control& control);

}  // namespace bench
