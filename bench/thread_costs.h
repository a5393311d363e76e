// thread_costs.h: what the threads of a process have cost, read from /proc:
// their CPU time (the scheduler's run time, /proc/PID/task/TID/schedstat,
// in nanoseconds) and their context switches (voluntary + involuntary,
// .../status). A thread that slept the whole time adds exactly nothing to
// either, which is what the idle figures (scale_64_guests_idle,
// vsock_idle_64) claim of hostpeer, hosts and guests with nothing to do.
//
//   const bench::IdleMeter hostpeer(pid);                // every thread of pid
//   const bench::IdleMeter mine(::getpid(), {tid1, tid2}); // two threads of this process
//   std::this_thread::sleep_for(window);
//   const bench::ThreadsCost c = hostpeer.cost();        // c.cpu_s, c.switches
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>

namespace bench {

struct ThreadsCost {
  double cpu_s = 0;       // run time, user and system
  uint64_t switches = 0;  // voluntary + involuntary context switches
};

// What each thread of `pid` alive now has cost since it started, by
// thread id; and their sum; and their ids. Throw std::runtime_error if
// they cannot be read (the process is gone).
std::map<pid_t, ThreadsCost> costs_by_thread(pid_t pid);
ThreadsCost threads_cost(pid_t pid);
std::set<pid_t> thread_ids(pid_t pid);

// What threads of a process cost from construction on.
class IdleMeter {
 public:
  // Every thread of `pid`, or (`only` not empty) those of its threads;
  // throws std::runtime_error if one of them is not there.
  explicit IdleMeter(pid_t pid, std::set<pid_t> only = {});
  // Since construction. A thread started meanwhile counts whole (if it
  // counts at all); throws std::runtime_error if one has ended meanwhile
  // (what it cost went with it) or the process is gone.
  ThreadsCost cost() const;

 private:
  std::map<pid_t, ThreadsCost> sample() const;

  pid_t pid_;
  std::set<pid_t> only_;
  std::map<pid_t, ThreadsCost> before_;
};

}  // namespace bench
