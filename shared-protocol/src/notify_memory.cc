#include "vmci/proto/notify_memory.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace vmci::proto {
namespace {

std::atomic_ref<uint32_t> word(uint32_t& w) { return std::atomic_ref<uint32_t>(w); }

// Shared between processes: no FUTEX_PRIVATE_FLAG.
long futex(uint32_t* address, int op, uint32_t value, const timespec* timeout) {
  return ::syscall(SYS_futex, address, op, value, timeout, nullptr, 0);
}

}  // namespace

bool ring(NotifyMemory* memory, uint64_t index) {
  std::atomic_ref<uint8_t>(memory->bitmap[index]).fetch_or(1, std::memory_order_seq_cst);
  word(memory->wake.sequence).fetch_add(1, std::memory_order_seq_cst);
  // Read-modify-write, not a bare load: it orders against the sleeper's
  // increment without a fence (which ThreadSanitizer does not model).
  return word(memory->wake.sleepers).fetch_add(0, std::memory_order_seq_cst) != 0;
}

void wake(NotifyMemory* memory) { futex(&memory->wake.sequence, FUTEX_WAKE, INT32_MAX, nullptr); }

void nudge(NotifyMemory* memory) {
  word(memory->wake.sequence).fetch_add(1, std::memory_order_seq_cst);
  wake(memory);
}

bool take(NotifyMemory* memory, uint64_t index) {
  return (std::atomic_ref<uint8_t>(memory->bitmap[index]).fetch_and(0xfe, std::memory_order_acq_rel) &
          1) != 0;
}

uint32_t ring_sequence(const NotifyMemory* memory) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(memory->wake.sequence))
      .load(std::memory_order_acquire);
}

uint32_t wait_for_ring(NotifyMemory* memory, uint32_t seen, std::chrono::milliseconds timeout) {
  word(memory->wake.sleepers).fetch_add(1, std::memory_order_seq_cst);
  // Checked after announcing the sleep: a ring either sees the sleeper, or
  // its new sequence is seen here.
  uint32_t now = word(memory->wake.sequence).fetch_add(0, std::memory_order_seq_cst);
  if (now == seen) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
    const timespec ts{static_cast<time_t>(seconds.count()),
                      static_cast<long>((timeout - seconds).count() * 1000000)};
    futex(&memory->wake.sequence, FUTEX_WAIT, seen, &ts);
    now = ring_sequence(memory);
  }
  word(memory->wake.sleepers).fetch_sub(1, std::memory_order_seq_cst);
  return now;
}

}  // namespace vmci::proto
