#include "vmci/proto/notify_indexes.h"

namespace vmci::proto {

uint32_t NotifyIndexes::allocate() {
  uint32_t index;
  if (max_ < kCount || count_ < kCount) {
    if (last_released_ < max_ && !used(last_released_)) {
      index = last_released_;
      last_released_ = kCount;
    } else {
      bool reused = false;
      index = last_reserved_;
      // A hole below max_: scan from the last reserved index, as the drivers
      // do. (They test count + 1 < max, which misses the last hole when
      // count + 1 == max == 4096 and would hand out 4096, beyond the page;
      // here that case scans too.)
      if (count_ + 1 < max_ || (max_ == kCount && count_ < kCount)) {
        index %= max_;
        do {
          if (!used(index)) {
            reused = true;
            break;
          }
          index = (index + 1) % max_;
        } while (index != last_released_ && index != last_reserved_ % max_);
      }
      if (!reused) index = max_++;
    }
  } else {
    index = (last_reserved_ + 1) % kCount;
  }
  last_reserved_ = index;
  ++count_;
  ++users_[index];
  return index;
}

void NotifyIndexes::release(uint32_t index) {
  if (index >= kCount || users_[index] == 0) return;
  --users_[index];
  --count_;
  if (index == max_ - 1) {
    while (max_ > 0 && !used(max_ - 1)) --max_;
  }
  last_released_ = index;
}

}  // namespace vmci::proto
