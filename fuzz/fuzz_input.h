// fuzz_input.h: what the fuzz targets share: an invariant check that stops
// the fuzzer (the input is saved), and the input read as fixed-size values
// from its front.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace vmci::fuzz {

// A broken invariant: the fuzzer stops and saves the input.
inline void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Bytes taken from the front of the input; missing bytes read as zero.
struct Input {
  const uint8_t* data;
  size_t size;

  template <typename T>
  T take() {
    T value{};
    const size_t n = std::min(size, sizeof value);
    std::memcpy(&value, data, n);
    data += n;
    size -= n;
    return value;
  }
  std::vector<uint8_t> bytes(size_t n) {
    n = std::min(n, size);
    std::vector<uint8_t> out(data, data + n);
    data += n;
    size -= n;
    return out;
  }
};

}  // namespace vmci::fuzz
