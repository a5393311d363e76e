#include "vmci/proto/ringer_grants.h"

#include "vmci/proto/handles.h"

namespace vmci::proto {

bool RingerGrants::add(const RingGrantBody& grant, std::shared_ptr<RingChannel> channel) {
  std::lock_guard lock(mutex_);
  if (channel) {
    // A channel id is not reused while this endpoint knows it: hostpeer
    // closes it here first. So this is new, or the same memory again.
    channels_[grant.channel_id].memory = std::move(channel);
  } else if (!channels_.count(grant.channel_id)) {
    return false;
  }
  Channel* known = &channels_[grant.channel_id];
  const Grant kept{grant.channel_id, known, grant.slot, grant.generation, grant.lane_cap};
  switch (static_cast<SlotKind>(grant.kind)) {
    case SlotKind::kDatagram:
    case SlotKind::kDatagramFromHost:
      if (!known->lane) known->lane = std::make_unique<LaneWriter>(known->memory.get());
      if (static_cast<SlotKind>(grant.kind) == SlotKind::kDatagram) {
        datagram_grants_[handle_key(grant.handle)] = kept;
      } else {
        source_grants_[SourceKey{handle_key(grant.handle), grant.owner_cid}] = kept;
      }
      break;
    case SlotKind::kDoorbell:
      grants_[Key{handle_key(grant.handle), grant.priv_flags}] = kept;
      break;
    default:
      return false;  // a kind this endpoint does not know
  }
  return true;
}

void RingerGrants::close_channel(uint32_t channel_id) {
  std::lock_guard lock(mutex_);
  const auto on_channel = [&](const auto& entry) { return entry.second.channel_id == channel_id; };
  std::erase_if(grants_, on_channel);
  std::erase_if(datagram_grants_, on_channel);
  std::erase_if(source_grants_, on_channel);
  channels_.erase(channel_id);
}

void RingerGrants::clear() {
  std::lock_guard lock(mutex_);
  grants_.clear();
  datagram_grants_.clear();
  source_grants_.clear();
  channels_.clear();
}

RingerGrants::Ring RingerGrants::ring(vmci_handle doorbell, uint32_t priv_flags) {
  std::shared_ptr<RingChannel> to_wake;
  {
    // No system call under the lock: the slot is set and signalled here,
    // the owner (if asleep) woken after.
    std::lock_guard lock(mutex_);
    auto it = grants_.find(Key{handle_key(doorbell), priv_flags});
    if (it == grants_.end()) return Ring::kNotGranted;
    const Grant& grant = it->second;
    switch (ring_slot(grant.channel->memory.get(), grant.slot, grant.generation)) {
      case SlotRing::kRung:
        return Ring::kRung;
      case SlotRing::kRungWakeNeeded:
        to_wake = grant.channel->memory;  // kept mapped until the wake
        break;
      case SlotRing::kRefused:
        grants_.erase(it);
        return Ring::kNotGranted;
    }
  }
  wake(&to_wake->wake);
  return Ring::kRungAndWoke;
}

template <typename Map>
RingerGrants::Send RingerGrants::send_through(Map& grants, const typename Map::key_type& key,
                                              const vmci_datagram& header,
                                              std::span<const uint8_t> payload,
                                              std::shared_ptr<RingChannel>* to_wake) {
  auto it = grants.find(key);
  if (it == grants.end()) return Send::kNotGranted;
  const Grant& grant = it->second;
  switch (grant.channel->lane->send(grant.slot, grant.generation, header, payload,
                                    grant.lane_cap)) {
    case LaneSend::kSent:
      return Send::kSent;
    case LaneSend::kFull:
      return Send::kFull;
    case LaneSend::kSentWakeNeeded:
      *to_wake = grant.channel->memory;
      return Send::kSentAndWoke;
    case LaneSend::kRefused:
      grants.erase(it);
      return Send::kNotGranted;
  }
  return Send::kNotGranted;
}

RingerGrants::Send RingerGrants::send(const vmci_datagram& header,
                                      std::span<const uint8_t> payload) {
  std::shared_ptr<RingChannel> to_wake;
  Send sent;
  {
    // One writer per lane: the lock keeps this process's senders in turn.
    std::lock_guard lock(mutex_);
    sent = send_through(datagram_grants_, handle_key(header.dst), header, payload, &to_wake);
    if (sent == Send::kNotGranted && header.src.context == VMCI_HOST_CONTEXT_ID) {
      sent = send_through(source_grants_, SourceKey{handle_key(header.src), header.dst.context},
                          header, payload, &to_wake);
    }
  }
  if (to_wake) wake(&to_wake->wake);
  return sent;
}

std::optional<int> RingerGrants::send_result(const vmci_datagram& header,
                                             std::span<const uint8_t> payload) {
  switch (send(header, payload)) {
    case Send::kSent:
    case Send::kSentAndWoke:
      return static_cast<int>(sizeof(vmci_datagram) + payload.size());
    case Send::kFull:
      return VMCI_ERROR_NO_RESOURCES;
    case Send::kNotGranted:
      break;
  }
  return std::nullopt;
}

}  // namespace vmci::proto
