#include "vmci/proto/ring_channel.h"

#include <atomic>

#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

std::atomic_ref<uint32_t> slot_word(RingChannel* channel, uint32_t slot) {
  return std::atomic_ref<uint32_t>(channel->slots[slot]);
}

constexpr uint32_t generation_of(uint32_t word) { return word >> 8; }

}  // namespace

uint32_t grant_slot(RingChannel* channel, uint32_t slot, uint32_t previous) {
  const uint32_t generation = previous + 1 >= (1u << 24) ? 1 : previous + 1;
  slot_word(channel, slot).store(generation << 8, std::memory_order_seq_cst);
  return generation;
}

void revoke_slot(RingChannel* channel, uint32_t slot) {
  slot_word(channel, slot).fetch_or(kSlotRevoked, std::memory_order_seq_cst);
}

SlotRing ring_slot(RingChannel* channel, uint32_t slot, uint32_t generation) {
  if (slot >= kRingChannelSlots || generation == 0) return SlotRing::kRefused;
  auto word = slot_word(channel, slot);
  uint32_t now = word.load(std::memory_order_relaxed);
  do {
    if (generation_of(now) != generation || (now & kSlotRevoked) != 0) return SlotRing::kRefused;
    if (now & kSlotRung) break;  // not taken yet: the owner will see it
  } while (!word.compare_exchange_weak(now, now | kSlotRung, std::memory_order_seq_cst));
  return signal(&channel->wake) ? SlotRing::kRungWakeNeeded : SlotRing::kRung;
}

bool take_slot(RingChannel* channel, uint32_t slot, uint32_t generation) {
  if (slot >= kRingChannelSlots || generation == 0) return false;
  auto word = slot_word(channel, slot);
  uint32_t now = word.load(std::memory_order_acquire);
  do {
    if (generation_of(now) != generation || (now & kSlotRung) == 0) return false;
  } while (!word.compare_exchange_weak(now, now & ~kSlotRung, std::memory_order_acq_rel));
  return true;
}

bool slot_granted(const RingChannel* channel, uint32_t slot, uint32_t generation) {
  if (slot >= kRingChannelSlots || generation == 0) return false;
  const uint32_t now = std::atomic_ref<uint32_t>(const_cast<uint32_t&>(channel->slots[slot]))
                           .load(std::memory_order_acquire);
  return generation_of(now) == generation && (now & kSlotRevoked) == 0;
}

std::shared_ptr<RingChannel> map_ring_channel(int fd, std::string* error) {
  std::shared_ptr<SharedMemory> memory = SharedMemory::map_fd(fd, kRingChannelFileSize, error);
  if (!memory) return nullptr;
  auto* channel = reinterpret_cast<RingChannel*>(memory->data());
  return std::shared_ptr<RingChannel>(std::move(memory), channel);
}

}  // namespace vmci::proto
