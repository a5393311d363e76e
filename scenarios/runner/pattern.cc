#include "pattern.h"

namespace vmci::scenario {

uint64_t PatternStream::word(uint64_t k) const {
  uint64_t z = seed_ + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint8_t PatternStream::byte_at(uint64_t i) const {
  return static_cast<uint8_t>(word(i / 8) >> (8 * (i % 8)));
}

void PatternStream::fill(uint64_t offset, uint8_t* out, size_t n) const {
  size_t done = 0;
  while (done < n) {
    const uint64_t i = offset + done;
    const uint64_t w = word(i / 8);
    for (unsigned b = static_cast<unsigned>(i % 8); b < 8 && done < n; ++b) {
      out[done++] = static_cast<uint8_t>(w >> (8 * b));
    }
  }
}

}  // namespace vmci::scenario
