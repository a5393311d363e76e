// idle_cost.h: what the two sides of an idle trial (vsock_idle_64 and its
// baseline) cost over a window in which nothing should happen: the host
// side is threads of this process (those of the hostpeer and the host's
// vSockets embedded here; the calling thread measures and sleeps through
// the window), the guest side a child process, every thread of it. Both as
// thread_costs.h reads them: a thread that slept throughout adds nothing.
//
//   bench::IdleCost cost = bench::measure_idle(host_threads, child.pid(), params);
//   // cost.host.cpu_s, cost.host.switches, cost.guest...
#pragma once

#include <sys/types.h>

#include <set>

#include "thread_costs.h"

namespace bench {

struct IdleParams {
  int connections = 64;
  double settle_s = 0.2;  // after the last connection is made, before the window
  double idle_s = 5;      // the window
};

struct IdleCost {
  ThreadsCost host;   // the host side's threads in this process
  ThreadsCost guest;  // the child
  double seconds = 0;  // the window's exact length
};

// Sleeps p.settle_s, then p.idle_s, and returns what `host_threads` (of
// this process; not the calling one) and `guest` cost over the latter.
// Throws std::runtime_error if it cannot read them, or if one of those
// threads, or a thread of `guest`, is gone.
IdleCost measure_idle(const std::set<pid_t>& host_threads, pid_t guest, const IdleParams& p);

}  // namespace bench
