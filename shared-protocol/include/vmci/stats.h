// stats.h: counts of what hostpeer holds and has done, to check that
// nothing leaks. The same type comes from an embedded hostpeer
// (vmci::host::HostPeer::stats()) and from a daemon over a host connection
// (vmci::guest::Driver::hostpeer_stats()).
//
//   vmci::Stats before = peer->stats();
//   ... run the test ...
//   assert(peer->stats().queue_pairs == before.queue_pairs);
#pragma once

#include <cstdint>

namespace vmci {

struct Stats {
  // Held now.
  uint64_t guest_contexts = 0;
  uint64_t host_connections = 0;
  uint64_t host_datagram_handles = 0;
  uint64_t queue_pairs = 0;
  uint64_t queue_pair_bytes = 0;  // memory of those pairs, headers included
  uint64_t doorbells = 0;         // linked guest doorbells and host doorbells
  uint64_t ring_channels = 0;     // doorbell fast-path channels
  uint64_t ring_grants = 0;       // slots granted in them
  uint64_t pending_datagrams = 0;
  uint64_t pending_datagram_bytes = 0;
  // Counted since hostpeer started.
  uint64_t datagrams_routed = 0;
  uint64_t events_sent = 0;
  uint64_t doorbells_rung = 0;  // rings that went through hostpeer (not a ring channel)
};

}  // namespace vmci
