// ring_channel.h: the doorbell (and datagram) fast path. In VMCI the hypervisor sets the
// target's notify bit on every ring; here, once hostpeer has checked that a
// connection may ring a doorbell (spec §5.2), it grants that ringer a slot
// of a ring channel: one page shared by hostpeer, the ringer and the
// doorbell's owner. Later rings set the slot and signal the channel's wake
// word, with no call to hostpeer and, while the owner is awake, no system
// call at all.
//
// A slot word is generation << 8 | kSlotRevoked | kSlotRung. hostpeer
// grants a slot with a new generation and revokes it (sets kSlotRevoked)
// when the doorbell or either side goes, before it answers anything that
// depends on that; a ringer whose ring is refused asks hostpeer, which
// answers as spec §5.2 says. The owner takes only slots that hostpeer told
// it of, with their generation, so a ringer that writes anything at all into
// the page can still ring nothing but what it was granted.
//
//   // hostpeer, once notify_doorbell allowed ringer -> doorbell:
//   const uint32_t generation = grant_slot(channel, slot, last[slot]);   // tell both sides
//   // ringer:                                 // owner, after its wait:
//   if (ring_slot(channel, slot, generation)   if (take_slot(channel, slot, generation)) run();
//       == SlotRing::kRungWakeNeeded) wake(&channel->wake);
//
// A slot may instead be granted for a datagram handle: the ringer then
// writes its datagrams to that handle into the channel's datagram lane,
// which follows the page in the same memory (vmci/proto/datagram_lane.h),
// and the slot word says only whether the grant still holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vmci/proto/wake_word.h"

namespace vmci::proto {

inline constexpr uint64_t kRingChannelSize = 4096;  // the page of slots
// The whole channel: the page, the datagram lane's indexes, its data.
inline constexpr uint64_t kDatagramLaneControlSize = 4096;
inline constexpr uint64_t kDatagramLaneDataSize = 256 * 1024;
inline constexpr uint64_t kRingChannelFileSize =
    kRingChannelSize + kDatagramLaneControlSize + kDatagramLaneDataSize;
inline constexpr uint32_t kRingChannelSlots = (kRingChannelSize - 64) / 4;
inline constexpr uint32_t kSlotRung = 1;
inline constexpr uint32_t kSlotRevoked = 2;

struct RingChannel {
  NotifyWakeWord wake;  // the owner sleeps on it
  // hostpeer's: how many deliveries it has queued for the owner so far
  // (2.3, to owners that said kFeatureHostLanes; else 0). A ringer writes
  // it into its lane as a barrier record (datagram_lane.h), so that the
  // owner takes what the ringer sent after, say, its detach only once it
  // has taken the detach's event.
  uint64_t owner_deliveries;
  uint32_t reserved[12];
  uint32_t slots[kRingChannelSlots];
};
static_assert(sizeof(RingChannel) == kRingChannelSize);

enum class SlotRing {
  kRung,            // set; the owner is awake: nothing more to do
  kRungWakeNeeded,  // set; the owner may sleep: wake(&channel->wake)
  kRefused,         // revoked or granted anew: ask hostpeer
};

// hostpeer: grants `slot` afresh (not rung) with the generation after
// `previous` (the one hostpeer last granted it with, 0 if none; never 0,
// 24 bits) and returns it. hostpeer keeps the generations itself: the
// ringer can write the page, so what the page says is not trusted.
uint32_t grant_slot(RingChannel* channel, uint32_t slot, uint32_t previous);
// hostpeer: later rings of the slot are refused.
void revoke_slot(RingChannel* channel, uint32_t slot);
// The ringer: sets the slot if it is still granted with `generation`, then
// signals the channel's wake word. No system call: when it returns
// kRungWakeNeeded the caller makes the FUTEX_WAKE (outside its locks).
SlotRing ring_slot(RingChannel* channel, uint32_t slot, uint32_t generation);
// The owner: true if the slot, granted with `generation`, was rung since it
// was last taken (one notification however many rings: §5.4).
bool take_slot(RingChannel* channel, uint32_t slot, uint32_t generation);

// True while the slot is granted with `generation` and not revoked (a
// datagram slot's check before each datagram).
bool slot_granted(const RingChannel* channel, uint32_t slot, uint32_t generation);

// Maps a ring channel handed over as a descriptor (sealed against
// shrinking, at least kRingChannelFileSize bytes: the page and its
// datagram lane); the pointer keeps the mapping. Null with *error if it
// cannot.
std::shared_ptr<RingChannel> map_ring_channel(int fd, std::string* error);

}  // namespace vmci::proto
