#include "vmci/vmci_pattern.h"

extern "C" {

uint64_t vmci_pattern_word(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void vmci_pattern_fill(uint64_t seed, uint64_t offset, void* out, size_t n) {
  auto* bytes = static_cast<unsigned char*>(out);
  size_t done = 0;
  while (done < n) {
    const uint64_t i = offset + done;
    const uint64_t w = vmci_pattern_word(seed, i / 8);
    for (unsigned b = static_cast<unsigned>(i % 8); b < 8 && done < n; ++b) {
      bytes[done++] = static_cast<unsigned char>(w >> (8 * b));
    }
  }
}

size_t vmci_pattern_check(uint64_t seed, uint64_t offset, const void* data, size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  size_t done = 0;
  while (done < n) {
    const uint64_t i = offset + done;
    const uint64_t w = vmci_pattern_word(seed, i / 8);
    for (unsigned b = static_cast<unsigned>(i % 8); b < 8 && done < n; ++b, ++done) {
      if (bytes[done] != static_cast<unsigned char>(w >> (8 * b))) return done;
    }
  }
  return n;
}

}  // extern "C"
