// queue_pair_memory_reserve.h: hostpeer's own queue-pair memory made
// ahead. Making a pair's memfd and status page costs about ten system
// calls; an alloc that finds blank memory of its size ready only writes
// the queue headers, and restock() makes the next while nobody waits (the
// session calls it once the alloc's result is written). Ready memory is of
// the size the last pair took, was never handed to anyone, and holds two
// descriptors and a mapped page each. Not thread-safe: the core
// serialises calls.
//
//   QueuePairMemoryReserve reserve;
//   auto memory = reserve.take(handle, 65536, 65536, &error);  // made now: none ready
//   reserve.restock();                                        // kReady of 65536 + 65536
//   auto next = reserve.take(other, 65536, 65536, &error);     // ready-made
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "memory/queue_pair_memory.h"

namespace vmci::host {

class QueuePairMemoryReserve {
 public:
  static constexpr size_t kReady = 2;

  // A new pair's memory (sizes in guest view): ready-made if there is
  // memory of its size, else made now. Null with *error on failure.
  std::unique_ptr<QueuePairMemory> take(vmci_handle handle, uint64_t produce_size,
                                        uint64_t consume_size, std::string* error);
  // Makes blank memory of the size last taken until kReady are ready (stops
  // at the first failure: an alloc makes its own then, and says why).
  void restock();
  // Drops what is ready (when nobody is connected, so that hostpeer holds
  // nothing then).
  void clear() {
    ready_.clear();
    size_ = 0;
  }
  size_t ready() const { return ready_.size(); }

 private:
  uint64_t size_ = 0;  // of the last pair taken: what restock() makes
  std::vector<std::unique_ptr<QueuePairMemory::Blank>> ready_;
};

}  // namespace vmci::host
