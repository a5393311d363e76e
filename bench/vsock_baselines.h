// vsock_baselines.h: the Unix-domain baselines of the vSockets figures
// (vsock_bench.h) that no other figure has, with the same processes,
// placement, checks and measurements as ours. (vsock_stream_64KiB's is
// socket_baseline.h's socketpair trial with StreamParams::every_byte;
// vsock_rr_64B's, pingpong_baseline.h's socketpair ping-pong of 64 bytes.)
//
// - vsock_connect_rate (run_unix_connect_trial): a Unix stream socket
//   listening on a path in a temp dir (backlog 16); the child connects,
//   reads until the end of the stream and closes, in a loop, counting
//   cycles in the control page; a thread of this process accepts and
//   closes.
// - vsock_idle_64 (run_unix_idle_trial): `connections` Unix stream
//   socketpairs, one end of each in the child, held idle while both sides
//   are measured as ours are (idle_cost.h; the host side being
//   `host_threads`, ours': VsockBench::host_threads(), serving no
//   connection now). The socketpairs cost nothing: what this shows is what
//   the measurement reads then.
#pragma once

#include <sys/types.h>

#include <set>

#include "count_window.h"
#include "idle_cost.h"
#include "stream.h"
#include "trial.h"

namespace bench {

Measurement run_unix_connect_trial(const CountWindow& window);
IdleCost run_unix_idle_trial(const IdleParams& params, const std::set<pid_t>& host_threads);

// Children (trial.cc dispatches them).
void unix_connect_child(const ChildArgs& args, Control& control);
void unix_idle_child(const ChildArgs& args, Control& control);

}  // namespace bench
