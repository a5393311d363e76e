#include "datagram_handles.h"

#include "vmci/proto/handles.h"

namespace vmci::guest::internal {

std::shared_ptr<const DatagramHandles::Entry> DatagramHandles::lookup_locked(vmci_handle h) const {
  auto [begin, end] = by_resource_.equal_range(h.resource);
  for (auto it = begin; it != end; ++it) {
    const vmci_id stored = it->second->handle.context;
    if (it->second->callback && (stored == h.context || stored == VMCI_INVALID_ID)) {
      return it->second;
    }
  }
  return nullptr;
}

bool DatagramHandles::exists_locked(vmci_handle h) const {
  auto [begin, end] = by_resource_.equal_range(h.resource);
  for (auto it = begin; it != end; ++it) {
    const vmci_id stored = it->second->handle.context;
    // A wildcard on either side matches any context.
    if (stored == h.context || stored == VMCI_INVALID_ID || h.context == VMCI_INVALID_ID) {
      return true;
    }
  }
  return false;
}

int DatagramHandles::create(vmci_id context, vmci_id resource, uint32_t flags, uint32_t priv_flags,
                            DatagramCallback callback, vmci_handle* out) {
  std::lock_guard lock(mutex_);
  return add_locked(context, resource, flags, priv_flags, std::move(callback), out);
}

int DatagramHandles::claim(vmci_id context, vmci_id resource, vmci_handle* out) {
  std::lock_guard lock(mutex_);
  return add_locked(context, resource, 0, 0, {}, out);
}

int DatagramHandles::release(vmci_handle exact) {
  std::lock_guard lock(mutex_);
  auto [begin, end] = by_resource_.equal_range(exact.resource);
  for (auto it = begin; it != end; ++it) {
    if (!it->second->callback && proto::same_handle(it->second->handle, exact)) {
      by_resource_.erase(it);
      return VMCI_SUCCESS;
    }
  }
  return VMCI_ERROR_NOT_FOUND;
}

int DatagramHandles::add_locked(vmci_id context, vmci_id resource, uint32_t flags,
                                uint32_t priv_flags, DatagramCallback callback,
                                vmci_handle* out) {
  if (by_resource_.size() >= kMaxGuestEntries) return VMCI_ERROR_NO_RESOURCES;
  if (resource == VMCI_INVALID_ID) {
    // One lap of the id space above the reserved ids, skipping VMCI_INVALID_ID.
    bool found = false;
    for (uint64_t tries = 0; tries < VMCI_INVALID_ID - (VMCI_RESERVED_RESOURCE_ID_MAX + 1);
         ++tries) {
      const vmci_id candidate = next_resource_++;
      if (next_resource_ == VMCI_INVALID_ID) next_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
      if (!exists_locked(VMCI_MAKE_HANDLE(context, candidate))) {
        resource = candidate;
        found = true;
        break;
      }
    }
    if (!found) return VMCI_ERROR_NO_HANDLE;
  } else if (exists_locked(VMCI_MAKE_HANDLE(context, resource))) {
    return VMCI_ERROR_DUPLICATE_ENTRY;
  }
  const vmci_handle handle = VMCI_MAKE_HANDLE(context, resource);
  by_resource_.emplace(resource, std::make_shared<const Entry>(
                                     Entry{handle, flags, priv_flags, std::move(callback)}));
  *out = handle;
  return VMCI_SUCCESS;
}

void DatagramHandles::insert(vmci_handle handle, uint32_t flags, uint32_t priv_flags,
                             DatagramCallback callback) {
  std::lock_guard lock(mutex_);
  by_resource_.emplace(handle.resource, std::make_shared<const Entry>(
                                            Entry{handle, flags, priv_flags, std::move(callback)}));
}

std::shared_ptr<const DatagramHandles::Entry> DatagramHandles::lookup(vmci_handle h) const {
  std::lock_guard lock(mutex_);
  return lookup_locked(h);
}

int DatagramHandles::remove(vmci_handle h, bool from_callback) {
  std::unique_lock lock(mutex_);
  const std::shared_ptr<const Entry> entry = lookup_locked(h);
  if (entry == nullptr) return VMCI_ERROR_NOT_FOUND;
  auto [begin, end] = by_resource_.equal_range(h.resource);
  for (auto it = begin; it != end; ++it) {
    if (it->second != entry) continue;
    by_resource_.erase(it);
    if (!from_callback) callback_done_.wait(lock, [&] { return running_ != entry; });
    return VMCI_SUCCESS;
  }
  return VMCI_ERROR_NOT_FOUND;
}

void DatagramHandles::start_callback(const std::shared_ptr<const Entry>& entry) {
  std::lock_guard lock(mutex_);
  running_ = entry;
}

void DatagramHandles::finish_callback() {
  {
    std::lock_guard lock(mutex_);
    running_.reset();
  }
  callback_done_.notify_all();
}

}  // namespace vmci::guest::internal
