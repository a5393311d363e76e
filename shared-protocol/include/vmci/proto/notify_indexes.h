// notify_indexes.h: the notify-bitmap index allocator of a VMCI guest
// driver (spec §5.3, identical in Linux and FreeBSD): the first doorbells
// get 0, 1, 2, ...; a freed index is handed out next; holes are found by
// scanning; once all 4096 indices are in use they are shared round-robin
// (every doorbell on a shared index fires when it is rung, §5.4).
// Not thread-safe: the endpoint's doorbell table guards it.
#pragma once

#include <cstdint>
#include <vector>

namespace vmci::proto {

class NotifyIndexes {
 public:
  static constexpr uint32_t kCount = 4096;  // one bitmap page, a byte per index

  NotifyIndexes() : users_(kCount, 0) {}

  uint32_t allocate();
  // Gives back an index that allocate() handed out.
  void release(uint32_t index);
  // One past the highest index in use: the part of the bitmap to scan.
  uint32_t scan_limit() const { return max_; }
  uint32_t in_use() const { return count_; }

 private:
  bool used(uint32_t index) const { return users_[index] != 0; }

  std::vector<uint32_t> users_;  // doorbells per index (more than 1 once shared)
  uint32_t max_ = 0;             // max_notify_idx
  uint32_t count_ = 0;           // notify_idx_count
  uint32_t last_reserved_ = 0;   // last_notify_idx_reserved
  uint32_t last_released_ = kCount;  // last_notify_idx_released; kCount: none
};

}  // namespace vmci::proto
