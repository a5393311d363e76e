// futex.h: FUTEX_WAIT and FUTEX_WAKE on a 32-bit word that may be shared
// between processes (no FUTEX_PRIVATE_FLAG): the round-trip children sleep
// on words of the control page, and the futex baseline is made of these.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace bench {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));

inline uint32_t* futex_word(std::atomic<uint32_t>& word) {
  return reinterpret_cast<uint32_t*>(&word);
}

// Sleeps while `word` holds `expected`, at most `timeout`. Returns at once
// if it does not; may return early (a wake, a signal, a spurious wake-up).
inline void futex_wait(std::atomic<uint32_t>& word, uint32_t expected,
                       std::chrono::microseconds timeout) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const timespec ts{static_cast<time_t>(seconds.count()),
                    static_cast<long>((timeout - seconds).count() * 1000)};
  ::syscall(SYS_futex, futex_word(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

// Wakes at most `count` threads sleeping on `word`.
inline void futex_wake(std::atomic<uint32_t>& word, int count = 1) {
  ::syscall(SYS_futex, futex_word(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

}  // namespace bench
