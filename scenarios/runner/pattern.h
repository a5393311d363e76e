// pattern.h: the scenario format's deterministic byte stream: the
// little-endian bytes of SplitMix64's outputs from state `seed`. A thin
// C++ face of vmci/vmci_pattern.h, the public functions a proxy uses to
// make the same bytes.
//
//   PatternStream p(7);
//   p.byte_at(0) == 0xd7
//   p.fill(offset, buf, n);   // bytes offset .. offset+n-1
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmci::scenario {

class PatternStream {
 public:
  explicit PatternStream(uint64_t seed) : seed_(seed) {}

  // Word k of the stream: mix(seed + (k + 1) * 0x9E3779B97F4A7C15).
  uint64_t word(uint64_t k) const;
  uint8_t byte_at(uint64_t i) const;
  // Writes stream bytes offset .. offset+n-1 to out.
  void fill(uint64_t offset, uint8_t* out, size_t n) const;
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
};

}  // namespace vmci::scenario
