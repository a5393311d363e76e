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

void publish_deliveries_reached(NotifyMemory* memory, uint32_t reached) {
  std::atomic_ref<uint32_t>(memory->deliveries_reached).store(reached, std::memory_order_seq_cst);
}

uint32_t deliveries_reached(const NotifyMemory* memory) {
  // atomic_ref needs a non-const object; the load does not write.
  return std::atomic_ref<uint32_t>(const_cast<NotifyMemory*>(memory)->deliveries_reached)
      .load(std::memory_order_seq_cst);
}

}  // namespace vmci::proto
