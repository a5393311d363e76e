#include "core/ring_channels.h"

#include <atomic>

#include "vmci/proto/handles.h"

namespace vmci::host {

namespace {

size_t count_of(const std::map<uint64_t, size_t>& counts, uint64_t peer) {
  const auto it = counts.find(peer);
  return it == counts.end() ? 0 : it->second;
}

}  // namespace

RingChannels::Channel* RingChannels::find(uint64_t ringer, uint64_t owner) {
  const auto it = by_sides_.find({ringer, owner});
  return it == by_sides_.end() ? nullptr : &channels_.at(it->second);
}

bool RingChannels::refuse(uint64_t peer, Bound bound) {
  switch (bound) {
    case Bound::kOwnerChannels: ++refusals_.owner_channels; break;
    case Bound::kRingerChannels: ++refusals_.ringer_channels; break;
    case Bound::kSlots: ++refusals_.slots; break;
    case Bound::kMemory: ++refusals_.memory; break;
  }
  return reported_.insert({peer, bound}).second;
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

RingChannels::Channel* RingChannels::find_or_make(
    uint64_t ringer, uint64_t owner, bool* made, std::string* error,
    std::optional<std::pair<uint64_t, Bound>>* refused) {
  *made = false;
  if (Channel* c = find(ringer, owner)) return c;
  if (count_of(owned_, owner) >= kMaxRingChannelsPerOwner) {
    *error = "the owner has " + std::to_string(kMaxRingChannelsPerOwner) +
             " ring channels, the most its delivery thread's one futex_waitv watches (128 "
             "words); rings and datagrams of further ringers go through hostpeer";
    *refused = {owner, Bound::kOwnerChannels};
    return nullptr;
  }
  if (count_of(rung_, ringer) >= kMaxRingChannelsPerRinger) {
    *error = "the ringer rings through " + std::to_string(kMaxRingChannelsPerRinger) +
             " ring channels, the most it may map; its rings and datagrams to further owners "
             "go through hostpeer";
    *refused = {ringer, Bound::kRingerChannels};
    return nullptr;
  }
  std::shared_ptr<RingChannelFile> memory = make_(error);
  if (!memory) {
    *refused = {owner, Bound::kMemory};
    return nullptr;
  }
  while (next_id_ == 0 || channels_.count(next_id_)) ++next_id_;
  const uint32_t id = next_id_++;
  *made = true;
  Channel channel{id, ringer, owner, std::move(memory), {},
                  std::vector<uint32_t>(proto::kRingChannelSlots, 0)};
  by_sides_[{ringer, owner}] = id;
  by_owner_.emplace(owner, id);
  ++owned_[owner];
  ++rung_[ringer];
  return &channels_.emplace(id, std::move(channel)).first->second;
}

std::optional<RingGrant> RingChannels::grant(uint64_t ringer, uint64_t owner, vmci_handle handle,
                                             uint32_t priv_flags, std::string* error,
                                             bool* first_refusal) {
  const uint64_t key = proto::handle_key(handle);
  if (const Channel* c = find(ringer, owner)) {
    for (const auto& [slot, s] : c->slots) {
      if (s.handle_key == key && s.priv_flags == priv_flags) return std::nullopt;  // held
    }
  }
  bool made = false;
  std::optional<std::pair<uint64_t, Bound>> refused;
  Channel* channel = find_or_make(ringer, owner, &made, error, &refused);
  if (channel == nullptr) {
    const bool first = refused && refuse(refused->first, refused->second);
    if (first_refusal) *first_refusal = first;
    return std::nullopt;
  }
  uint32_t slot = 0;
  while (slot < proto::kRingChannelSlots && channel->slots.count(slot)) ++slot;
  if (slot == proto::kRingChannelSlots) {
    *error = "ring channel slots used up";
    const bool first = refuse(owner, Bound::kSlots);
    if (first_refusal) *first_refusal = first;
    return std::nullopt;
  }
  channel->slots.emplace(slot, Slot{key, priv_flags});
  const uint32_t generation =
      proto::grant_slot(channel->memory->channel().get(), slot, channel->generations[slot]);
  channel->generations[slot] = generation;
  return RingGrant{channel->id, slot, generation, ringer, owner, channel->memory, made, made};
}

void RingChannels::publish_owner_deliveries(uint64_t owner, uint64_t count) {
  const auto [first, last] = by_owner_.equal_range(owner);
  for (auto it = first; it != last; ++it) {
    std::atomic_ref<uint64_t>(channels_.at(it->second).memory->channel()->owner_deliveries)
        .store(count, std::memory_order_release);
  }
}

void RingChannels::publish_owner_deliveries(uint64_t ringer, uint64_t owner, uint64_t count) {
  const Channel* c = find(ringer, owner);
  if (c == nullptr) return;
  std::atomic_ref<uint64_t>(c->memory->channel()->owner_deliveries)
      .store(count, std::memory_order_release);
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
  // Each side of a closed channel has room again: its next refusal is news.
  for (const ClosedRingChannel& c : closed) {
    by_sides_.erase({c.ringer, c.owner});
    std::erase_if(by_owner_, [&](const auto& o) { return o.second == c.channel_id; });
    if (--owned_[c.owner] == 0) owned_.erase(c.owner);
    if (--rung_[c.ringer] == 0) rung_.erase(c.ringer);
    std::erase_if(reported_, [&](const auto& r) { return r.first == c.ringer || r.first == c.owner; });
  }
  return closed;
}

}  // namespace vmci::host
