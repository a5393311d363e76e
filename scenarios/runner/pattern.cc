#include "pattern.h"

#include "vmci/vmci_pattern.h"

namespace vmci::scenario {

uint64_t PatternStream::word(uint64_t k) const { return vmci_pattern_word(seed_, k); }

uint8_t PatternStream::byte_at(uint64_t i) const {
  return static_cast<uint8_t>(word(i / 8) >> (8 * (i % 8)));
}

void PatternStream::fill(uint64_t offset, uint8_t* out, size_t n) const {
  vmci_pattern_fill(seed_, offset, out, n);
}

}  // namespace vmci::scenario
