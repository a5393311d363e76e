#include "memory/queue_pair_memory_reserve.h"

#include "vmci/proto/queue.h"

namespace vmci::host {

std::unique_ptr<QueuePairMemory> QueuePairMemoryReserve::take(vmci_handle handle,
                                                              uint64_t produce_size,
                                                              uint64_t consume_size,
                                                              std::string* error) {
  const uint64_t size = proto::queue_pair_layout(produce_size, consume_size).total;
  if (size != size_) {
    ready_.clear();  // another size: what is ready would wait for nothing
    size_ = size;
  }
  if (ready_.empty()) return QueuePairMemory::create(handle, produce_size, consume_size, error);
  std::unique_ptr<QueuePairMemory::Blank> blank = std::move(ready_.back());
  ready_.pop_back();
  return QueuePairMemory::from_blank(handle, produce_size, consume_size, std::move(blank), error);
}

void QueuePairMemoryReserve::restock() {
  while (size_ != 0 && ready_.size() < kReady) {
    std::string ignored;
    auto blank = QueuePairMemory::make_blank(size_, &ignored);
    if (!blank) return;
    ready_.push_back(std::move(blank));
  }
}

}  // namespace vmci::host
