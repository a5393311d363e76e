// stats.h: counts of what hostpeer holds, to check that nothing leaks.
#pragma once

#include <cstdint>

namespace vmci::host {

struct Stats {
  uint64_t guest_contexts = 0;
  uint64_t host_connections = 0;
  uint64_t host_datagram_handles = 0;
  uint64_t queue_pairs = 0;
  uint64_t queue_pair_bytes = 0;  // memory of those pairs, headers included
  uint64_t doorbells = 0;         // linked guest doorbells and host doorbells
  uint64_t doorbells_rung = 0;  // rings that went through hostpeer (not through a ring channel)
  uint64_t ring_channels = 0;   // doorbell fast-path channels (vmci/proto/ring_channel.h)
  uint64_t ring_grants = 0;     // slots granted in them
  uint64_t pending_datagrams = 0;
  uint64_t pending_datagram_bytes = 0;
  uint64_t datagrams_routed = 0;
  uint64_t events_sent = 0;
};

}  // namespace vmci::host
