// pingpong_baseline.h: the round-trip baselines of the doorbell figures
// and of vsock_rr_64B, with the same pinning (pinger in this process on
// kConsumerCpu, ponger in a child on kProducerCpu) and the same round-trip
// count as those trials. Both sides sleep in the kernel while they wait, as the doorbell
// path does.
//
// - futex_pingpong: two 32-bit words in a memfd (each on its own 128-byte
//   line), `ping` written by this process and `pong` by the child. A round
//   trip: store ping = n, FUTEX_WAKE(ping); the child, asleep in
//   FUTEX_WAIT(ping), stores pong = n and FUTEX_WAKEs it; this process
//   sleeps in FUTEX_WAIT(pong) until it reads n. Shared futexes (no
//   FUTEX_PRIVATE_FLAG), as hostpeer's notify memory uses. Two wake-ups and
//   four system calls a round trip: the least a cross-process sleeping
//   round trip can cost.
// - socketpair_pingpong: a Unix stream socketpair; write a `message`-byte
//   request, read the answer of the same size (blocking calls; the child
//   reads the request and writes the answer; messages.h: both check every
//   byte). The doorbell figures use 1 byte; vsock_rr_64B, 64.
#pragma once

#include <cstddef>

#include "rtt.h"
#include "trial.h"

namespace bench {

RttResult run_futex_pingpong_trial(const RttParams& params);
RttResult run_socket_pingpong_trial(const RttParams& params, size_t message);

// Children: answer pings until stopped.
void futex_pingpong_child(const ChildArgs& args, Control& control);
void socket_pingpong_child(const ChildArgs& args, Control& control);

}  // namespace bench
