#include "core/pending_deliveries.h"

namespace vmci::host {

void PendingDeliveries::add(uint32_t id, uint64_t bytes) {
  if (!bytes_of_.emplace(id, bytes).second) return;  // ids are never reused while pending
  bytes_ += bytes;
  if (counted_) order_.push_back(id);
}

bool PendingDeliveries::take(uint32_t id) {
  auto it = bytes_of_.find(id);
  if (it == bytes_of_.end()) return false;
  bytes_ -= it->second;
  bytes_of_.erase(it);
  return true;
}

bool PendingDeliveries::settle(uint32_t reached) {
  if (!counted_) return true;
  const uint32_t fresh = reached - reached_;  // wraps as the peer's count does
  reached_ = reached;
  const bool honest = fresh <= order_.size();
  const size_t retire = honest ? fresh : order_.size();
  for (size_t i = 0; i < retire; ++i) {
    take(order_.front());  // may have been taken by id already: counted all the same
    order_.pop_front();
  }
  return honest;
}

}  // namespace vmci::host
