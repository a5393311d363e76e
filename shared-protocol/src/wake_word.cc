#include "vmci/proto/wake_word.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>

namespace vmci::proto {
namespace {

std::atomic_ref<uint32_t> atomic(uint32_t& w) { return std::atomic_ref<uint32_t>(w); }

timespec deadline_after(std::chrono::milliseconds timeout) {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const auto ns = static_cast<long long>(now.tv_nsec) +
                  std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  return timespec{now.tv_sec + static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

}  // namespace

bool signal(NotifyWakeWord* word) {
  atomic(word->sequence).fetch_add(1, std::memory_order_seq_cst);
  // Both sides' operations are seq_cst, in one total order: either this
  // load sees the sleeper's increment, or the sleeper's later load of the
  // sequence sees the bump above. (No fence: ThreadSanitizer models these.)
  return atomic(word->sleepers).load(std::memory_order_seq_cst) != 0;
}

void wake(NotifyWakeWord* word) {
  // Shared between processes: no FUTEX_PRIVATE_FLAG.
  ::syscall(SYS_futex, &word->sequence, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

bool signal_and_wake(NotifyWakeWord* word) {
  if (!signal(word)) return false;
  wake(word);
  return true;
}

uint32_t sequence(const NotifyWakeWord* word) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(word->sequence))
      .load(std::memory_order_acquire);
}

void wait_for_any(std::span<NotifyWakeWord* const> words, std::span<const uint32_t> seen,
                  std::chrono::milliseconds timeout) {
  const size_t n = std::min({words.size(), seen.size(), kMaxWaitWords});
  if (n == 0) return;
  for (size_t i = 0; i < n; ++i) atomic(words[i]->sleepers).fetch_add(1, std::memory_order_seq_cst);
  // Checked after announcing the sleep: news either sees a sleeper (and
  // wakes it), or its new sequence is seen here.
  bool moved = false;
  for (size_t i = 0; i < n && !moved; ++i) {
    moved = atomic(words[i]->sequence).load(std::memory_order_seq_cst) != seen[i];
  }
  if (!moved && n == 1) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec relative{static_cast<time_t>(seconds.count()),
                            static_cast<long>((timeout - seconds).count() * 1000000)};
    ::syscall(SYS_futex, &words[0]->sequence, FUTEX_WAIT, seen[0], &relative, nullptr, 0);
  } else if (!moved) {
    std::array<futex_waitv, kMaxWaitWords> waiters{};
    for (size_t i = 0; i < n; ++i) {
      waiters[i].val = seen[i];
      waiters[i].uaddr = reinterpret_cast<uintptr_t>(&words[i]->sequence);
      waiters[i].flags = FUTEX_32;  // shared: no FUTEX_PRIVATE_FLAG
    }
    const timespec deadline = deadline_after(timeout);
    if (::syscall(SYS_futex_waitv, waiters.data(), static_cast<unsigned>(n), 0u, &deadline,
                  CLOCK_MONOTONIC) < 0 &&
        errno == ENOSYS) {
      // Linux before 5.16: sleep on the first word, looking at the others
      // every millisecond (slower, never lost).
      const timespec tick{0, 1000000};
      ::syscall(SYS_futex, &words[0]->sequence, FUTEX_WAIT, seen[0], &tick, nullptr, 0);
    }
  }
  for (size_t i = 0; i < n; ++i) atomic(words[i]->sleepers).fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace vmci::proto
