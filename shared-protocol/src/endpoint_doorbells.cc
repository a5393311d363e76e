#include "vmci/proto/endpoint_doorbells.h"

#include "vmci/proto/handles.h"

namespace vmci::proto {

uint64_t EndpointDoorbells::reserve_index() {
  std::lock_guard lock(mutex_);
  return indexes_.allocate();
}

void EndpointDoorbells::release_index(uint64_t index) {
  std::lock_guard lock(mutex_);
  indexes_.release(static_cast<uint32_t>(index));
}

int EndpointDoorbells::insert(vmci_handle handle, uint64_t index, Callback callback) {
  std::lock_guard lock(mutex_);
  const uint64_t key = handle_key(handle);
  if (doorbells_.count(key)) return VMCI_ERROR_ALREADY_EXISTS;
  doorbells_.emplace(key, Doorbell{handle, index, false,
                                   std::make_shared<Callback>(std::move(callback)), {}});
  return VMCI_SUCCESS;
}

void EndpointDoorbells::activate(vmci_handle handle) {
  std::lock_guard lock(mutex_);
  auto it = doorbells_.find(handle_key(handle));
  if (it != doorbells_.end()) it->second.active = true;
}

int EndpointDoorbells::remove(vmci_handle handle, bool from_callback, uint64_t* index) {
  std::unique_lock lock(mutex_);
  auto it = doorbells_.find(handle_key(handle));
  if (it == doorbells_.end()) return VMCI_ERROR_NOT_FOUND;
  const std::shared_ptr<Callback> callback = it->second.callback;
  if (index != nullptr) *index = it->second.index;
  indexes_.release(static_cast<uint32_t>(it->second.index));
  doorbells_.erase(it);
  if (!from_callback) finished_.wait(lock, [&] { return running_ != callback.get(); });
  return VMCI_SUCCESS;
}

bool EndpointDoorbells::contains(vmci_handle handle) const {
  std::lock_guard lock(mutex_);
  return doorbells_.count(handle_key(handle)) != 0;
}

size_t EndpointDoorbells::size() const {
  std::lock_guard lock(mutex_);
  return doorbells_.size();
}

bool EndpointDoorbells::add_grant(vmci_handle handle, uint32_t channel_id,
                                  std::shared_ptr<RingChannel> channel, uint32_t slot,
                                  uint32_t generation) {
  std::lock_guard lock(mutex_);
  auto it = doorbells_.find(handle_key(handle));
  if (it == doorbells_.end() || slot >= kRingChannelSlots) return false;
  it->second.grants.push_back(Grant{channel_id, std::move(channel), slot, generation});
  return true;
}

void EndpointDoorbells::drop_channel(uint32_t channel_id) {
  std::lock_guard lock(mutex_);
  for (auto& [key, doorbell] : doorbells_) {
    std::erase_if(doorbell.grants, [&](const Grant& g) { return g.channel_id == channel_id; });
  }
}

std::vector<EndpointDoorbells::Rung> EndpointDoorbells::take_rung(NotifyMemory* memory) {
  std::lock_guard lock(mutex_);
  // Indexes with an active doorbell; a ring of another waits in its byte.
  std::map<uint64_t, std::vector<const Doorbell*>> active;
  for (const auto& [key, doorbell] : doorbells_) {
    if (doorbell.active) active[doorbell.index].push_back(&doorbell);
  }
  std::vector<Rung> out;
  for (const auto& [index, on_index] : active) {
    const bool index_rung = take(memory, index);
    for (const Doorbell* d : on_index) {
      bool rung = index_rung;
      for (const Grant& g : d->grants) {
        rung = take_slot(g.channel.get(), g.slot, g.generation) || rung;  // takes every slot
      }
      if (rung) out.push_back(Rung{d->handle, d->callback});
    }
  }
  return out;
}

void EndpointDoorbells::run(const Rung& rung) {
  {
    std::lock_guard lock(mutex_);
    auto it = doorbells_.find(handle_key(rung.handle));
    // Destroyed meanwhile (and maybe made again: then it is another doorbell).
    if (it == doorbells_.end() || it->second.callback != rung.callback) return;
    running_ = rung.callback.get();
  }
  (*rung.callback)();
  {
    std::lock_guard lock(mutex_);
    running_ = nullptr;
  }
  finished_.notify_all();
}

}  // namespace vmci::proto
