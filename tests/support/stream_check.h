// stream_check.h: moving a deterministic byte stream through a queue pair
// in random chunk sizes, and checking it byte for byte on the other side.
// Used by the integration tests and vmci-qp-stream-peer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "vmci/queue_pair.h"

namespace vmci::testing {

struct StreamOutcome {
  uint64_t bytes = 0;  // moved (and, when reading, checked)
  std::string error;   // empty when all went through
  bool ok() const { return error.empty(); }
};

// Enqueues `length` bytes of the ByteStream for `seed`, in chunks of random
// sizes (1..max_chunk, from `chunk_seed`), waiting while the queue is full;
// gives up after `limit`.
StreamOutcome write_stream(QueuePair& qp, uint64_t seed, uint64_t length, uint64_t chunk_seed,
                           std::chrono::seconds limit, size_t max_chunk = 300000);
// Dequeues `length` bytes likewise and checks each against the stream.
StreamOutcome read_stream(QueuePair& qp, uint64_t seed, uint64_t length, uint64_t chunk_seed,
                          std::chrono::seconds limit, size_t max_chunk = 300000);

}  // namespace vmci::testing
