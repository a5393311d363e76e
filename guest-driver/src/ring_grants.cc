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
  proto::NotifyWakeWord* to_wake = nullptr;
  {
    // No system call under the lock: the slot is set and signalled here,
    // the owner (if asleep) woken after.
    std::lock_guard lock(mutex_);
    auto it = grants_.find(Key{proto::handle_key(doorbell), priv_flags});
    if (it == grants_.end()) return Ring::kNotGranted;
    const Grant& grant = it->second;
    switch (proto::ring_slot(grant.channel.get(), grant.slot, grant.generation)) {
      case proto::SlotRing::kRung:
        return Ring::kRung;
      case proto::SlotRing::kRungWakeNeeded:
        to_wake = &grant.channel->wake;
        break;
      case proto::SlotRing::kRefused:
        grants_.erase(it);
        return Ring::kNotGranted;
    }
  }
  // The page may be unmapped by now (its channel closed): FUTEX_WAKE on an
  // address no longer mapped fails harmlessly, and a wake-up where nobody
  // waits is no harm either.
  proto::wake(to_wake);
  return Ring::kRungAndWoke;
}

}  // namespace vmci::guest::internal
