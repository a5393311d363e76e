// ring.h: the ring arithmetic of a VMCI queue (spec §6.7), as pure functions.
//
// S is the queue size in bytes, t the producer tail, h the consumer head.
// One byte is always kept free, so t == h means empty and a queue of size S
// holds at most S - 1 bytes.
//
//   free_space(0, 0, 4096) == 4095
//   buf_ready(10, 4090, 4096) == 16
//   advance(4090, 16, 4096) == 10
#pragma once

#include <cstdint>

#include "vmci/vmci_defs.h"

namespace vmci::proto {

// Bytes that may be enqueued, or VMCI_ERROR_INVALID_SIZE if t or h is not
// below S (which includes every queue of size 0).
inline constexpr int64_t free_space(uint64_t t, uint64_t h, uint64_t S) {
  if (t >= S || h >= S) return VMCI_ERROR_INVALID_SIZE;
  if (t >= h) return static_cast<int64_t>(S - (t - h) - 1);
  return static_cast<int64_t>(h - t - 1);
}

// Bytes that may be dequeued, or VMCI_ERROR_INVALID_SIZE as free_space.
inline constexpr int64_t buf_ready(uint64_t t, uint64_t h, uint64_t S) {
  const int64_t free = free_space(t, h, S);
  if (free < 0) return free;
  return static_cast<int64_t>(S) - free - 1;
}

// Pointer p moved on by n bytes (n <= S), modulo S, with VMCI's unsigned wrap.
inline constexpr uint64_t advance(uint64_t p, uint64_t n, uint64_t S) {
  if (p >= S - n) p -= S;
  return p + n;
}

// Where n bytes starting at ring offset p lie: `first` bytes at p, then
// `second` bytes at offset 0. Requires p < S and n < S.
struct RingSpan {
  uint64_t first;
  uint64_t second;
};

inline constexpr RingSpan ring_span(uint64_t p, uint64_t n, uint64_t S) {
  if (p + n < S) return {n, 0};
  return {S - p, n - (S - p)};
}

}  // namespace vmci::proto
