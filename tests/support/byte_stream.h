// byte_stream.h: a deterministic byte stream for checking bulk transfers
// byte for byte: the little-endian bytes of SplitMix64 outputs from a seed,
// produced in order in pieces of any size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vmci::testing {

class ByteStream {
 public:
  explicit ByteStream(uint64_t seed) : state_(seed) {}

  // The next n bytes of the stream.
  void fill(uint8_t* out, size_t n) {
    while (n > 0) {
      if (used_ == sizeof word_) {
        word_ = next();
        used_ = 0;
      }
      const size_t step = n < sizeof word_ - used_ ? n : sizeof word_ - used_;
      std::memcpy(out, reinterpret_cast<const uint8_t*>(&word_) + used_, step);
      used_ += step;
      out += step;
      n -= step;
    }
  }

 private:
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  uint64_t state_;
  uint64_t word_ = 0;
  size_t used_ = sizeof(uint64_t);
};

}  // namespace vmci::testing
