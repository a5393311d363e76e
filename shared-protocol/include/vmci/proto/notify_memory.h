// notify_memory.h: a connection's doorbell notification memory, shared by
// hostpeer (which rings) and the endpoint (which waits and runs callbacks).
//
// Page 0 is VMCI's notify bitmap (spec §4.3): one byte per notify index,
// bit 0 = "a doorbell on this index was rung". Page 1 holds the wake word
// (vmci/proto/wake_word.h): a ringer sets the byte, then signals the word,
// and makes a futex call only if the endpoint sleeps, so a ring costs no
// system call while the endpoint is awake. A byte that is set again before
// the endpoint took it is one notification: that is VMCI's coalescing
// (§5.4). No locks: bytes and words are atomics.
//
//   // ringer                                 // endpoint
//   if (ring(memory, index)) wake(&memory->wake);   seen = sequence(&memory->wake); ...
//                                             if (take(memory, index)) callback();
#pragma once

#include <cstddef>
#include <cstdint>

#include "vmci/proto/wake_word.h"

namespace vmci::proto {

inline constexpr uint64_t kNotifyIndexes = 4096;
inline constexpr uint64_t kNotifyMemorySize = 8192;

struct NotifyMemory {
  uint8_t bitmap[kNotifyIndexes];
  NotifyWakeWord wake;
  // How many of hostpeer's deliveries the endpoint has reached (taken for
  // their callbacks) on this connection, mod 2^32: written by an endpoint
  // that said kFeatureCountedDeliveries (frame.h), read by hostpeer, which
  // trusts it no further than PendingDeliveries does.
  uint32_t deliveries_reached;
  uint8_t unused[kNotifyMemorySize - kNotifyIndexes - sizeof(NotifyWakeWord) - sizeof(uint32_t)];
};
static_assert(sizeof(NotifyMemory) == kNotifyMemorySize);
static_assert(offsetof(NotifyMemory, deliveries_reached) == kNotifyIndexes + 8);

// Marks `index` rung and signals the wake word; true if a sleeper must be
// woken (then wake(&memory->wake)). `index` must be below kNotifyIndexes.
bool ring(NotifyMemory* memory, uint64_t index);
// Takes the notification of `index`: true if it was rung since last taken.
bool take(NotifyMemory* memory, uint64_t index);
// The endpoint's count of deliveries reached: published before the
// callback of the last one runs, read by hostpeer before it counts what is
// pending.
void publish_deliveries_reached(NotifyMemory* memory, uint32_t reached);
uint32_t deliveries_reached(const NotifyMemory* memory);

}  // namespace vmci::proto
