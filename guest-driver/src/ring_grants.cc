#include "ring_grants.h"

#include "vmci/proto/handles.h"

namespace vmci::guest::internal {

bool RingGrants::add(const proto::RingGrantBody& grant,
                     std::shared_ptr<proto::RingChannel> channel) {
  std::lock_guard lock(mutex_);
  if (channel) {
    channels_[grant.channel_id] = channel;
  } else if (auto it = channels_.find(grant.channel_id); it != channels_.end()) {
    channel = it->second;
  } else {
    return false;
  }
  grants_[Key{proto::handle_key(grant.doorbell), grant.priv_flags}] =
      Grant{grant.channel_id, std::move(channel), grant.slot, grant.generation};
  return true;
}

void RingGrants::close_channel(uint32_t channel_id) {
  std::lock_guard lock(mutex_);
  channels_.erase(channel_id);
  std::erase_if(grants_, [&](const auto& entry) { return entry.second.channel_id == channel_id; });
}

void RingGrants::clear() {
  std::lock_guard lock(mutex_);
  grants_.clear();
  channels_.clear();
}

RingGrants::Ring RingGrants::ring(vmci_handle doorbell, uint32_t priv_flags) {
  const Key key{proto::handle_key(doorbell), priv_flags};
  Grant grant;
  {
    std::lock_guard lock(mutex_);
    auto it = grants_.find(key);
    if (it == grants_.end()) return Ring::kNotGranted;
    grant = it->second;  // keeps the page mapped while ringing
  }
  switch (proto::ring_slot(grant.channel.get(), grant.slot, grant.generation)) {
    case proto::SlotRing::kRung:
      return Ring::kRung;
    case proto::SlotRing::kRungAndWoke:
      return Ring::kRungAndWoke;
    case proto::SlotRing::kRefused:
      break;
  }
  std::lock_guard lock(mutex_);
  auto it = grants_.find(key);
  if (it != grants_.end() && it->second.channel_id == grant.channel_id &&
      it->second.slot == grant.slot && it->second.generation == grant.generation) {
    grants_.erase(it);
  }
  return Ring::kNotGranted;
}

}  // namespace vmci::guest::internal
