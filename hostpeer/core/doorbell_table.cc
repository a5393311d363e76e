#include "core/doorbell_table.h"

#include "vmci/proto/handles.h"

namespace vmci::host {

size_t DoorbellTable::count_of(uint64_t peer) const {
  size_t n = 0;
  for (const auto& [key, doorbell] : doorbells_) n += doorbell.owner.peer == peer;
  return n;
}

bool DoorbellTable::contains(vmci_handle handle) const {
  return doorbells_.count(proto::handle_key(handle)) != 0;
}

void DoorbellTable::count_ring(vmci_handle handle) {
  if (auto it = doorbells_.find(proto::handle_key(handle)); it != doorbells_.end()) {
    ++it->second.rings;
  }
}

std::vector<DoorbellTable::Entry> DoorbellTable::list() const {
  std::vector<Entry> out;
  out.reserve(doorbells_.size());
  for (const auto& [key, d] : doorbells_) {
    out.push_back({proto::handle_from_key(key), d.owner, d.index, d.priv_flags, d.rings});
  }
  return out;
}

int DoorbellTable::link(const DoorbellOwner& owner, vmci_handle handle, uint64_t index,
                        uint32_t priv_flags) {
  if (proto::is_invalid(handle) || handle.resource == VMCI_INVALID_ID ||
      index >= kNotifyIndexCount || (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  if (handle.context != owner.cid) return VMCI_ERROR_NO_ACCESS;
  if (doorbells_.count(proto::handle_key(handle))) return VMCI_ERROR_DUPLICATE_ENTRY;
  if (count_of(owner.peer) >= limits_.max_doorbells_per_context) return VMCI_ERROR_NO_RESOURCES;
  doorbells_.emplace(proto::handle_key(handle), Doorbell{owner, index, priv_flags, 0});
  return VMCI_SUCCESS;
}

int DoorbellTable::unlink(const DoorbellOwner& owner, vmci_handle handle) {
  auto it = doorbells_.find(proto::handle_key(handle));
  if (it == doorbells_.end() || it->second.owner.peer != owner.peer) return VMCI_ERROR_NOT_FOUND;
  doorbells_.erase(it);
  return VMCI_SUCCESS;
}

void DoorbellTable::unlink_all(uint64_t peer) {
  std::erase_if(doorbells_, [&](const auto& entry) { return entry.second.owner.peer == peer; });
}

DoorbellRing DoorbellTable::notify(const DoorbellNotifier& from, vmci_handle dst,
                                   std::optional<uint32_t> dst_context_priv) const {
  // 1. The handle and its context.
  if (proto::is_invalid(dst) || (from.caller_priv & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return {VMCI_ERROR_INVALID_ARGS};
  }
  if (dst.context == VMCI_HYPERVISOR_CONTEXT_ID) return {VMCI_ERROR_INVALID_ARGS};
  if (!dst_context_priv) return {VMCI_ERROR_NOT_FOUND};
  auto it = doorbells_.find(proto::handle_key(dst));
  // 2. Who may ring whom.
  if (from.cid != dst.context) {
    if (VMCI_CONTEXT_IS_VM(from.cid) && VMCI_CONTEXT_IS_VM(dst.context)) {
      return {VMCI_ERROR_DST_UNREACHABLE};
    }
    const bool host_doorbell = dst.context == VMCI_HOST_CONTEXT_ID;
    if (host_doorbell && it == doorbells_.end()) return {VMCI_ERROR_NOT_FOUND};
    const uint32_t dst_priv = host_doorbell ? it->second.priv_flags : *dst_context_priv;
    const uint32_t src_priv = from.cid == VMCI_HOST_CONTEXT_ID && from.caller_priv != 0
                                  ? from.caller_priv
                                  : from.context_priv;
    if (proto::deny_interaction(src_priv, dst_priv)) return {VMCI_ERROR_NO_ACCESS};
  }
  // 3, 4. A doorbell nobody linked is not there.
  if (it == doorbells_.end()) return {VMCI_ERROR_NOT_FOUND};
  return {VMCI_SUCCESS, it->second.owner.peer, it->second.index};
}

}  // namespace vmci::host
