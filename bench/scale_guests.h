// scale_guests.h: many guests streaming to one host at once (figure
// `scale_64_guests`): aggregate throughput, fairness between the streams,
// and what hostpeer costs while they run and once they idle.
//
// Ours: hostpeer runs as a daemon in a child process (`--child hostpeer`);
// this process is the device proxy: a host connection
// (vmci::guest::Driver, role host) that allocates every queue pair and
// consumes every stream on one thread. `guests` children (`--child
// scale-guest`) each connect as a guest, attach their pairs, create their
// doorbells, and stream stamped chunks (stream.h's stamps) into every pair,
// one thread per pair, until told to stop. Nobody busy-polls: a producer
// whose queue is full sleeps until the host rings its doorbell, and the host
// sleeps on its own doorbell when every queue is empty (the wake-up rules,
// those of Linux's vsock "qstate" notifications, are in scale_guests.cc).
//
// Baseline: the same guest processes (`--child scale-socket`), each with
// pairs_per_guest Unix stream socketpairs to this process, one blocking
// writer thread per socket, writing the same stamped chunks; this process
// reads them all with one level-triggered epoll loop.
//
// Both: every chunk is checked; a mismatch, a dead child or a stream with no
// progress for 10 s throws std::runtime_error. The trial waits until every
// stream has delivered data, streams warmup_s more, then counts bytes over
// window_s (per stream too), then stops the producers, drains, and (ours)
// measures hostpeer over idle_s with every guest still connected. The
// children and this process's trial threads are not pinned (the trial
// widens the calling thread's CPU set for its duration and restores it).
//
//   bench::ScaleParams p;  // 64 guests x 2 pairs
//   bench::ScaleResult ours = bench::run_scale_trial(p);
//   bench::ScaleResult socket = bench::run_scale_socket_trial(p);
//   double ratio = ours.bytes_per_s / socket.bytes_per_s;
#pragma once

#include <cstddef>
#include <cstdint>

#include "trial.h"

namespace bench {

struct ScaleParams {
  int guests = 64;              // guest processes
  int pairs_per_guest = 2;      // streams (queue pairs, or sockets) each, guest -> host; 1..16
  int doorbells_per_guest = 2;  // ours: stream j of a guest sleeps on its doorbell j % this; 1..16
  size_t chunk = 64 * 1024;     // bytes per enqueue / write, stamped and checked (>= 16)
  uint64_t queue_size = 256 * 1024;  // ours: each queue of each pair
  double warmup_s = 0.2, window_s = 1.0, idle_s = 1.0;
  double stall_s = 10;  // a stream with no progress for this long: the trial failed
};

struct ScaleResult {
  double bytes_per_s = 0;       // aggregate payload received by the host in the window
  uint64_t streams = 0;         // guests * pairs_per_guest
  double min_stream_share = 0;  // slowest stream's bytes / mean stream's bytes in the window
  // Ours only (0 for the socket baseline): the hostpeer daemon process, from /proc.
  uint64_t hostpeer_rss_bytes = 0;                // VmRSS, mid-window
  uint64_t hostpeer_shmem_bytes = 0;              // RssShmem (queue memory it maps)
  uint64_t hostpeer_rss_beyond_queue_memory = 0;  // RssAnon + RssFile
  uint64_t queue_memory_bytes = 0;  // the pairs' memory: streams * (2 queues + 2 header pages)
  double hostpeer_idle_cpu_s = 0;   // run time over idle_s, streams stopped, guests connected
  uint64_t hostpeer_idle_wakeups = 0;  // context switches (all threads) over that idle window
  // (Both as thread_costs.h reads them: run time to the nanosecond. The
  // bench's hostpeer child sleeps on its control page without a timeout,
  // so every wake-up counted is hostpeer's.)
};

// One trial each, with new children (and, ours, a new hostpeer daemon).
// Throws std::runtime_error on bad params or a failed trial.
ScaleResult run_scale_trial(const ScaleParams& p);
ScaleResult run_scale_socket_trial(const ScaleParams& p);

// Children (trial.cc dispatches them): args.data_fd is the guest's board
// (its pairs, doorbells or sockets, and the stop flags), args.chunk the
// chunk size; both stream until the board says stop, then stay connected
// until `control.stop`.
void scale_guest_child(const ChildArgs& args, Control& control);
void scale_socket_child(const ChildArgs& args, Control& control);

}  // namespace bench
