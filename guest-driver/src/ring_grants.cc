#include "ring_grants.h"

#include "vmci/proto/handles.h"

namespace vmci::guest::internal {

bool RingGrants::add(const proto::RingGrantBody& grant,
                     std::shared_ptr<proto::RingChannel> channel) {
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
  if (static_cast<proto::SlotKind>(grant.kind) == proto::SlotKind::kDatagram) {
    if (!known->lane) known->lane = std::make_unique<proto::LaneWriter>(known->memory.get());
    datagram_grants_[proto::handle_key(grant.handle)] = kept;
  } else {
    grants_[Key{proto::handle_key(grant.handle), grant.priv_flags}] = kept;
  }
  return true;
}

void RingGrants::close_channel(uint32_t channel_id) {
  std::lock_guard lock(mutex_);
  const auto on_channel = [&](const auto& entry) { return entry.second.channel_id == channel_id; };
  std::erase_if(grants_, on_channel);
  std::erase_if(datagram_grants_, on_channel);
  channels_.erase(channel_id);
}

void RingGrants::clear() {
  std::lock_guard lock(mutex_);
  grants_.clear();
  datagram_grants_.clear();
  channels_.clear();
}

RingGrants::Ring RingGrants::ring(vmci_handle doorbell, uint32_t priv_flags) {
  std::shared_ptr<proto::RingChannel> to_wake;
  {
    // No system call under the lock: the slot is set and signalled here,
    // the owner (if asleep) woken after.
    std::lock_guard lock(mutex_);
    auto it = grants_.find(Key{proto::handle_key(doorbell), priv_flags});
    if (it == grants_.end()) return Ring::kNotGranted;
    const Grant& grant = it->second;
    switch (proto::ring_slot(grant.channel->memory.get(), grant.slot, grant.generation)) {
      case proto::SlotRing::kRung:
        return Ring::kRung;
      case proto::SlotRing::kRungWakeNeeded:
        to_wake = grant.channel->memory;  // kept mapped until the wake
        break;
      case proto::SlotRing::kRefused:
        grants_.erase(it);
        return Ring::kNotGranted;
    }
  }
  proto::wake(&to_wake->wake);
  return Ring::kRungAndWoke;
}

RingGrants::Send RingGrants::send(const vmci_datagram& header, std::span<const uint8_t> payload) {
  std::shared_ptr<proto::RingChannel> to_wake;
  {
    // One writer per lane: the lock keeps this process's senders in turn.
    std::lock_guard lock(mutex_);
    auto it = datagram_grants_.find(proto::handle_key(header.dst));
    if (it == datagram_grants_.end()) return Send::kNotGranted;
    const Grant& grant = it->second;
    switch (grant.channel->lane->send(grant.slot, grant.generation, header, payload,
                                      grant.lane_cap)) {
      case proto::LaneSend::kSent:
        return Send::kSent;
      case proto::LaneSend::kFull:
        return Send::kFull;
      case proto::LaneSend::kSentWakeNeeded:
        to_wake = grant.channel->memory;
        break;
      case proto::LaneSend::kRefused:
        datagram_grants_.erase(it);
        return Send::kNotGranted;
    }
  }
  proto::wake(&to_wake->wake);
  return Send::kSentAndWoke;
}

}  // namespace vmci::guest::internal
