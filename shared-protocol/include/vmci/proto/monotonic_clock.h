// monotonic_clock.h: CLOCK_MONOTONIC in nanoseconds, the time base of
// trace lines (the same in every process of a machine).
#pragma once

#include <time.h>

#include <cstdint>

namespace vmci::proto {

inline uint64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace vmci::proto
