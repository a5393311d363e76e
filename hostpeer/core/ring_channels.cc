#include "core/ring_channels.h"

#include "vmci/proto/handles.h"

namespace vmci::host {

size_t RingChannels::owned_by(uint64_t peer) const {
  size_t n = 0;
  for (const auto& [id, c] : channels_) n += c.owner == peer;
  return n;
}

size_t RingChannels::rung_by(uint64_t peer) const {
  size_t n = 0;
  for (const auto& [id, c] : channels_) n += c.ringer == peer;
  return n;
}

size_t RingChannels::slot_count() const {
  size_t n = 0;
  for (const auto& [id, c] : channels_) n += c.slots.size();
  return n;
}

size_t RingChannels::slots_for(vmci_handle handle) const {
  const uint64_t key = proto::handle_key(handle);
  size_t n = 0;
  for (const auto& [id, c] : channels_) {
    for (const auto& [number, slot] : c.slots) n += slot.handle_key == key;
  }
  return n;
}

RingChannels::Channel* RingChannels::find_or_make(uint64_t ringer, uint64_t owner, bool* made,
                                                  std::string* error) {
  *made = false;
  for (auto& [id, c] : channels_) {
    if (c.ringer == ringer && c.owner == owner) return &c;
  }
  if (rung_by(ringer) >= kMaxRingChannelsPerRinger || owned_by(owner) >= kMaxRingChannelsPerOwner) {
    *error = "ring channels used up";
    return nullptr;
  }
  std::shared_ptr<RingChannelFile> memory = make_(error);
  if (!memory) return nullptr;
  while (next_id_ == 0 || channels_.count(next_id_)) ++next_id_;
  const uint32_t id = next_id_++;
  *made = true;
  Channel channel{id, ringer, owner, std::move(memory), {},
                  std::vector<uint32_t>(proto::kRingChannelSlots, 0)};
  return &channels_.emplace(id, std::move(channel)).first->second;
}

std::optional<RingGrant> RingChannels::grant(uint64_t ringer, uint64_t owner, vmci_handle handle,
                                             uint32_t priv_flags, std::string* error) {
  const uint64_t key = proto::handle_key(handle);
  for (const auto& [id, c] : channels_) {
    if (c.ringer != ringer || c.owner != owner) continue;
    for (const auto& [slot, s] : c.slots) {
      if (s.handle_key == key && s.priv_flags == priv_flags) return std::nullopt;  // held
    }
  }
  bool made = false;
  Channel* channel = find_or_make(ringer, owner, &made, error);
  if (channel == nullptr) return std::nullopt;
  uint32_t slot = 0;
  while (slot < proto::kRingChannelSlots && channel->slots.count(slot)) ++slot;
  if (slot == proto::kRingChannelSlots) {
    *error = "ring channel slots used up";
    return std::nullopt;
  }
  channel->slots.emplace(slot, Slot{key, priv_flags});
  const uint32_t generation =
      proto::grant_slot(channel->memory->channel().get(), slot, channel->generations[slot]);
  channel->generations[slot] = generation;
  return RingGrant{channel->id, slot, generation, ringer, owner, channel->memory, made, made};
}

void RingChannels::revoke(vmci_handle handle) {
  const uint64_t key = proto::handle_key(handle);
  for (auto& entry : channels_) {
    Channel& c = entry.second;
    std::erase_if(c.slots, [&](const auto& slot) {
      if (slot.second.handle_key != key) return false;
      proto::revoke_slot(c.memory->channel().get(), slot.first);
      return true;
    });
  }
}

std::vector<ClosedRingChannel> RingChannels::close_all(uint64_t peer) {
  std::vector<ClosedRingChannel> closed;
  std::erase_if(channels_, [&](const auto& entry) {
    const Channel& c = entry.second;
    if (c.ringer != peer && c.owner != peer) return false;
    for (uint32_t slot = 0; slot < proto::kRingChannelSlots; ++slot) {
      proto::revoke_slot(c.memory->channel().get(), slot);
    }
    closed.push_back(ClosedRingChannel{c.id, c.ringer, c.owner});
    return true;
  });
  return closed;
}

}  // namespace vmci::host
