// ring_paths.h: how an endpoint's doorbell rings went over part of a trial,
// as vmci::guest::Driver::ring_counts() counts them: rung straight into a
// ring channel (no system call), rung into it and the sleeping owner woken
// (one FUTEX_WAKE), or sent to hostpeer (a request and its answer: a first
// ring, before hostpeer granted a slot).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace bench {

struct RingPaths {
  uint64_t direct = 0;            // through a ring channel, no system call
  uint64_t direct_woke = 0;       // through a ring channel, one FUTEX_WAKE (the owner slept)
  uint64_t through_hostpeer = 0;  // a request to hostpeer

  uint64_t total() const { return direct + direct_woke + through_hostpeer; }
  // Rings that made at least one system call.
  uint64_t with_system_calls() const { return direct_woke + through_hostpeer; }

  RingPaths& operator+=(const RingPaths& other) {
    direct += other.direct;
    direct_woke += other.direct_woke;
    through_hostpeer += other.through_hostpeer;
    return *this;
  }
  // The rings between two readings of the same counts (`earlier` first).
  RingPaths since(const RingPaths& earlier) const {
    return {direct - earlier.direct, direct_woke - earlier.direct_woke,
            through_hostpeer - earlier.through_hostpeer};
  }
};

// "N = a direct (no system call) + b direct with FUTEX_WAKE (<why>) + c
// through hostpeer", `why` saying who slept, e.g. "the host slept".
inline std::string describe(const RingPaths& paths, const std::string& why) {
  char text[256];
  std::snprintf(text, sizeof text,
                "%llu = %llu direct (no system call) + %llu direct with FUTEX_WAKE (%s) + %llu "
                "through hostpeer",
                static_cast<unsigned long long>(paths.total()),
                static_cast<unsigned long long>(paths.direct),
                static_cast<unsigned long long>(paths.direct_woke), why.c_str(),
                static_cast<unsigned long long>(paths.through_hostpeer));
  return text;
}

}  // namespace bench
