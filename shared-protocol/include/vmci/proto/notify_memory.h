// notify_memory.h: a connection's doorbell notification memory, shared by
// hostpeer (which rings) and the endpoint (which waits and runs callbacks).
//
// Page 0 is VMCI's notify bitmap (spec §4.3): one byte per notify index,
// bit 0 = "a doorbell on this index was rung". Page 1 holds the wake-up
// word, an eventcount: a ringer sets the byte, then bumps `sequence`, and
// makes a futex call only if the endpoint said it sleeps (`sleepers`), so a
// ring costs no system call while the endpoint is awake. A byte that is set
// again before the endpoint took it is one notification: that is VMCI's
// coalescing (§5.4). No locks: bytes and words are atomics.
//
//   // ringer                               // endpoint
//   if (ring(memory, index)) wake(memory);  wait_for_ring(memory, seen, ...);
//                                           if (take(memory, index)) callback();
#pragma once

#include <chrono>
#include <cstdint>

namespace vmci::proto {

inline constexpr uint64_t kNotifyIndexes = 4096;
inline constexpr uint64_t kNotifyMemorySize = 8192;

struct NotifyWakeWord {
  uint32_t sequence;  // bumped after every ring
  uint32_t sleepers;  // endpoint threads inside wait_for_ring
};

struct NotifyMemory {
  uint8_t bitmap[kNotifyIndexes];
  NotifyWakeWord wake;
  uint8_t unused[kNotifyMemorySize - kNotifyIndexes - sizeof(NotifyWakeWord)];
};
static_assert(sizeof(NotifyMemory) == kNotifyMemorySize);

// Marks `index` rung and publishes it; true if a sleeper must be woken
// (then call wake). `index` must be below kNotifyIndexes.
bool ring(NotifyMemory* memory, uint64_t index);
// Wakes every thread sleeping in wait_for_ring (a FUTEX_WAKE).
void wake(NotifyMemory* memory);
// Bumps the sequence and wakes sleepers without ringing anything (an
// endpoint stopping its own waiter).
void nudge(NotifyMemory* memory);
// Takes the notification of `index`: true if it was rung since last taken.
bool take(NotifyMemory* memory, uint64_t index);
// The current sequence; pass it to wait_for_ring.
uint32_t ring_sequence(const NotifyMemory* memory);
// Sleeps until the sequence differs from `seen` or `timeout` passes;
// returns the sequence then.
uint32_t wait_for_ring(NotifyMemory* memory, uint32_t seen, std::chrono::milliseconds timeout);

}  // namespace vmci::proto
