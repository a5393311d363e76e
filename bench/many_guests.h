// many_guests.h: a thousand guests against one host connection (figure
// `scale_1024_guests`): how long they take to connect and set up, what
// hostpeer holds for them (memory, descriptors), what it costs while they
// idle, and the aggregate rate of a datagram storm from all of them at once.
//
// Ours: hostpeer runs as a daemon in a child process (`--child hostpeer`,
// as for scale_64_guests: its RSS and descriptor table are then its own,
// apart from this process's thousand children, control pages and pair
// mappings); this process is the one host connection (vmci::guest::Driver,
// role host) with a doorbell and a datagram handle, and allocates every
// guest's queue pair before the guests start. `guests` children (`--child
// many-guest`) wait at a start line; told to go, each connects as a guest,
// creates a doorbell and attaches its pair (the set-up, timed from the go to
// the last guest's end). Then the host rings every guest's doorbell and
// each guest rings the host's twice (the second ring shows whether it got a
// ring channel: a connection owns at most 120). Then the storm: every guest
// sends 64-byte datagrams to the host's handle in a loop (a send refused
// with NO_RESOURCES, the host behind, is sent again after a sleep of 50 us
// doubling to 1 ms); the host's callback checks each (sender, sequence, in
// order per sender) and counts. After the
// storm every datagram a guest was told was sent must have arrived. Then,
// every guest still connected, hostpeer's and the host endpoint's threads
// are measured over an idle window.
//
// Baseline: the same children (`--child many-socket`) against one epoll
// server thread in this process on a SOCK_SEQPACKET Unix socket: set-up is
// connect, say who it is, receive a memfd of the pair's size (mapped) and
// an eventfd (the doorbell) by SCM_RIGHTS; the host writes every eventfd,
// each guest answers with a one-byte message; the storm is 64-byte
// messages on each guest's connection, checked and counted by the server.
//
//   bench::ManyGuestsParams p;  // 1024 guests
//   bench::ManyGuestsResult ours = bench::run_many_guests_trial(p);
//   bench::ManyGuestsResult base = bench::run_many_sockets_trial(p);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ring_paths.h"
#include "trial.h"

namespace bench {

// The most guests a trial takes (the roster's size).
inline constexpr int kMaxManyGuests = 4096;

struct ManyGuestsParams {
  int guests = 1024;
  uint64_t queue_size = 64 * 1024;  // each queue of each guest's pair
  size_t payload = 64;              // storm datagrams' payload bytes (>= 16)
  double warmup_s = 0.5, window_s = 1.0, idle_s = 1.0;
  double stall_s = 120;  // a stage not reached by every guest in this long: failed
};

// How many of `requested` guests fit this process's limits (processes,
// threads, descriptors); *why names the limit when it is fewer.
int guests_that_fit(int requested, std::string* why);

struct ManyGuestsResult {
  int guests = 0;
  double prepare_s = 0;  // the host's pairs (ours) / the server's memfds and eventfds, before go
  double setup_s = 0;    // go -> the last guest connected, its pair and doorbell set up
  double storm_per_s = 0;  // datagrams received by the host per second, every guest sending
  uint64_t storm_datagrams = 0;  // all received in the trial, each checked
  // Ours only: the hostpeer process, after the set-up and after the storm (max).
  uint64_t hostpeer_rss = 0;    // VmRSS
  uint64_t hostpeer_shmem = 0;  // RssShmem: notify pages and ring channels it maps
  uint64_t hostpeer_fds = 0;    // entries of /proc/PID/fd after the set-up
  uint64_t hostpeer_fd_limit = 0;  // its soft RLIMIT_NOFILE
  uint64_t host_fds = 0;        // this process's, after the set-up (the baseline's too)
  uint64_t queue_memory = 0;    // the pairs' memory (none of it mapped by hostpeer)
  uint64_t ring_channels = 0;   // hostpeer's, after the rings both ways
  uint64_t guests_ringing_through_hostpeer = 0;  // their second ring still a request
  RingPaths guest_second_rings;                  // all guests' second rings
  uint64_t storm_routed_by_hostpeer = 0;  // storm datagrams hostpeer routed (not in a lane)
  double idle_cpu_s = 0;           // hostpeer's threads and the host endpoint's, idle window
  uint64_t idle_wakeups = 0;
  double idle_hostpeer_cpu_s = 0;  // of which hostpeer's
  uint64_t idle_hostpeer_wakeups = 0;
};

// One trial each, with new children (ours: and a new hostpeer). Throws
// std::runtime_error on bad params or a failed trial.
ManyGuestsResult run_many_guests_trial(const ManyGuestsParams& p);
ManyGuestsResult run_many_sockets_trial(const ManyGuestsParams& p);

// Children (trial.cc dispatches them): args.data_fd is the roster,
// args.guest_index the guest's entry in it, args.chunk the payload size.
void many_guest_child(const ChildArgs& args, Control& control);
void many_socket_child(const ChildArgs& args, Control& control);

}  // namespace bench
