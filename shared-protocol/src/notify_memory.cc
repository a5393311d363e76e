#include "vmci/proto/notify_memory.h"

#include <atomic>

namespace vmci::proto {

bool ring(NotifyMemory* memory, uint64_t index) {
  std::atomic_ref<uint8_t>(memory->bitmap[index]).fetch_or(1, std::memory_order_seq_cst);
  return signal(&memory->wake);
}

bool take(NotifyMemory* memory, uint64_t index) {
  return (std::atomic_ref<uint8_t>(memory->bitmap[index]).fetch_and(0xfe, std::memory_order_acq_rel) &
          1) != 0;
}

}  // namespace vmci::proto
