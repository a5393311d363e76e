// stamped_payload.h: payloads that say which they are, so a receiver can
// check every byte of a stream of datagrams and its order: the sequence
// number in the first 8 bytes, then bytes derived from it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vmci::testing {

inline uint8_t stamp_byte(uint64_t seq, size_t i) {
  return static_cast<uint8_t>(seq * 31 + i * 7 + 1);
}

// Fills `size` (>= 8) bytes for datagram `seq`.
inline void stamped_payload(uint64_t seq, uint8_t* p, size_t size) {
  std::memcpy(p, &seq, sizeof seq);
  for (size_t i = sizeof seq; i < size; ++i) p[i] = stamp_byte(seq, i);
}

// The sequence number of a payload stamped_payload made, or ~0 if it is
// not one (too short, or a byte differs).
inline uint64_t stamped_sequence(const uint8_t* p, size_t size) {
  uint64_t seq;
  if (size < sizeof seq) return ~uint64_t{0};
  std::memcpy(&seq, p, sizeof seq);
  for (size_t i = sizeof seq; i < size; ++i) {
    if (p[i] != stamp_byte(seq, i)) return ~uint64_t{0};
  }
  return seq;
}

}  // namespace vmci::testing
