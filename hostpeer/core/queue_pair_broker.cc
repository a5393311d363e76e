#include "queue_pair_broker.h"

#include "vmci/proto/handles.h"

namespace vmci::host {
namespace {

bool both_vms(vmci_id a, vmci_id b) { return VMCI_CONTEXT_IS_VM(a) && VMCI_CONTEXT_IS_VM(b); }

}  // namespace

bool QueuePairBroker::is_endpoint(const Pair& pair, const QpEndpoint& caller) const {
  return (pair.creator_attached && pair.creator.cid == caller.cid) ||
         (pair.has_attacher && pair.attacher.cid == caller.cid);
}

uint64_t QueuePairBroker::memory_of(vmci_id cid) const {
  uint64_t total = 0;
  for (const auto& [key, pair] : pairs_) {
    if (is_endpoint(pair, QpEndpoint{0, cid})) total += pair.produce_size + pair.consume_size;
  }
  return total;
}

uint32_t QueuePairBroker::count_of(vmci_id cid) const {
  uint32_t n = 0;
  for (const auto& [key, pair] : pairs_) n += is_endpoint(pair, QpEndpoint{0, cid});
  return n;
}

void QueuePairBroker::rename_context(uint64_t owner, vmci_id new_cid) {
  for (auto& [key, pair] : pairs_) {
    if (pair.creator.owner == owner) pair.creator.cid = new_cid;
    if (pair.has_attacher && pair.attacher.owner == owner) pair.attacher.cid = new_cid;
  }
}

int QueuePairBroker::state_of(vmci_handle handle) const {
  auto it = pairs_.find(proto::handle_key(handle));
  return it == pairs_.end() ? 0 : static_cast<int>(it->second.state);
}

QpAllocResult QueuePairBroker::alloc(const QpEndpoint& caller, const QpAllocRequest& request,
                                     std::vector<QpNotice>* notices) {
  const QpAllocResult invalid{VMCI_ERROR_INVALID_ARGS, VMCI_INVALID_HANDLE, false};
  QpAllocRequest r = request;
  // 0. The per-pair limit, before anything else (as the client API checks it).
  if (r.produce_size > VMCI_MAX_GUEST_QP_MEMORY || r.consume_size > VMCI_MAX_GUEST_QP_MEMORY ||
      r.produce_size + r.consume_size > VMCI_MAX_GUEST_QP_MEMORY) {
    return {VMCI_ERROR_NO_RESOURCES, VMCI_INVALID_HANDLE, false};
  }
  // 1. Arguments. A host creator may leave the handle to the broker.
  if (proto::is_invalid(r.handle) && caller.is_host() && !(r.flags & VMCI_QPFLAG_ATTACH_ONLY)) {
    do {
      r.handle = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, next_host_resource_++);
      if (next_host_resource_ == VMCI_INVALID_ID) {
        next_host_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
      }
    } while (pairs_.count(proto::handle_key(r.handle)));
  }
  if (proto::is_invalid(r.handle) || r.handle.context == VMCI_INVALID_ID ||
      (r.flags & ~VMCI_QP_ALL_FLAGS) || (r.flags & VMCI_QPFLAG_LOCAL) ||
      (r.produce_size == 0 && r.consume_size == 0) || caller.cid == VMCI_INVALID_ID) {
    return invalid;
  }
  auto it = pairs_.find(proto::handle_key(r.handle));
  // 2. The context already holds it.
  if (it != pairs_.end() && is_endpoint(it->second, caller)) {
    return {VMCI_ERROR_ALREADY_EXISTS, VMCI_INVALID_HANDLE, false};
  }
  // 3. Create or attach.
  if (it == pairs_.end()) return create(caller, r);
  return attach(it->second, caller, r, notices);
}

QpAllocResult QueuePairBroker::create(const QpEndpoint& caller, const QpAllocRequest& r) {
  auto fail = [](int status) { return QpAllocResult{status, VMCI_INVALID_HANDLE, false}; };
  if (r.flags & VMCI_QPFLAG_ATTACH_ONLY) return fail(VMCI_ERROR_NOT_FOUND);
  if (r.handle.context != caller.cid && r.handle.context != r.peer) {
    return fail(VMCI_ERROR_NO_ACCESS);
  }
  if (both_vms(caller.cid, r.peer)) return fail(VMCI_ERROR_DST_UNREACHABLE);
  const uint64_t memory = r.produce_size + r.consume_size;
  if (count_of(caller.cid) >= limits_.max_queue_pairs_per_context ||
      memory_of(caller.cid) + memory > limits_.max_qp_memory_per_context) {
    return fail(VMCI_ERROR_NO_RESOURCES);
  }
  Pair pair;
  pair.handle = r.handle;
  pair.peer = r.peer;
  pair.flags = r.flags;
  // Guest view: a host creator's produce queue is the guest's consume queue.
  pair.produce_size = caller.is_host() ? r.consume_size : r.produce_size;
  pair.consume_size = caller.is_host() ? r.produce_size : r.consume_size;
  pair.state = caller.is_host() ? QpState::kCreatedNoMem : QpState::kCreatedMem;
  pair.creator = caller;
  pair.require_trusted_attach = caller.context_priv & VMCI_PRIVILEGE_FLAG_RESTRICTED;
  pair.created_by_trusted = r.priv_flags & VMCI_PRIVILEGE_FLAG_TRUSTED;
  pairs_.emplace(proto::handle_key(r.handle), pair);
  return {VMCI_SUCCESS, r.handle, true};
}

QpAllocResult QueuePairBroker::attach(Pair& pair, const QpEndpoint& caller, const QpAllocRequest& r,
                                      std::vector<QpNotice>* notices) {
  auto fail = [](int status) { return QpAllocResult{status, VMCI_INVALID_HANDLE, false}; };
  if (pair.state != QpState::kCreatedNoMem && pair.state != QpState::kCreatedMem) {
    return fail(VMCI_ERROR_UNAVAILABLE);  // a third endpoint, or after a detach
  }
  if (pair.creator.cid == caller.cid) return fail(VMCI_ERROR_ALREADY_EXISTS);
  if (both_vms(caller.cid, pair.creator.cid)) return fail(VMCI_ERROR_DST_UNREACHABLE);
  if ((caller.context_priv & VMCI_PRIVILEGE_FLAG_RESTRICTED) && !pair.created_by_trusted) {
    return fail(VMCI_ERROR_NO_ACCESS);
  }
  if (pair.require_trusted_attach && !(r.priv_flags & VMCI_PRIVILEGE_FLAG_TRUSTED)) {
    return fail(VMCI_ERROR_NO_ACCESS);
  }
  if (pair.peer != VMCI_INVALID_ID && pair.peer != caller.cid) return fail(VMCI_ERROR_NO_ACCESS);
  if ((pair.flags & ~VMCI_QP_ASYMM) != (r.flags & ~VMCI_QP_ASYMM_PEER)) {
    return fail(VMCI_ERROR_QUEUEPAIR_MISMATCH);
  }
  const uint64_t produce = caller.is_host() ? r.consume_size : r.produce_size;
  const uint64_t consume = caller.is_host() ? r.produce_size : r.consume_size;
  if (produce != pair.produce_size || consume != pair.consume_size) {
    return fail(VMCI_ERROR_QUEUEPAIR_MISMATCH);
  }
  if (!caller.is_host() && pair.state != QpState::kCreatedNoMem)
    return fail(VMCI_ERROR_INVALID_ARGS);
  if (caller.is_host() && pair.state == QpState::kCreatedNoMem) return fail(VMCI_ERROR_UNAVAILABLE);
  const uint64_t memory = pair.produce_size + pair.consume_size;
  if (count_of(caller.cid) >= limits_.max_queue_pairs_per_context ||
      memory_of(caller.cid) + memory > limits_.max_qp_memory_per_context) {
    return fail(VMCI_ERROR_NO_RESOURCES);
  }
  pair.state = QpState::kAttachedMem;
  pair.attacher = caller;
  pair.has_attacher = true;
  notices->push_back(QpNotice{pair.creator.owner, pair.creator.cid, VMCI_EVENT_QP_PEER_ATTACH,
                              pair.handle, caller.cid});
  return {VMCI_SUCCESS, pair.handle, false};
}

int QueuePairBroker::detach(const QpEndpoint& caller, vmci_handle handle,
                            std::vector<QpNotice>* notices) {
  if (proto::is_invalid(handle)) return VMCI_ERROR_INVALID_ARGS;
  auto it = pairs_.find(proto::handle_key(handle));
  if (it == pairs_.end()) return VMCI_ERROR_NOT_FOUND;
  Pair& pair = it->second;
  const bool is_creator = pair.creator_attached && pair.creator.owner == caller.owner;
  const bool is_attacher = pair.has_attacher && pair.attacher.owner == caller.owner;
  if (!is_creator && !is_attacher) return VMCI_ERROR_NOT_FOUND;
  if (is_creator) {
    pair.creator_attached = false;
  } else {
    pair.has_attacher = false;
  }
  const bool creator_left = pair.creator_attached;
  if (!creator_left && !pair.has_attacher) {
    pairs_.erase(it);  // the last endpoint: no event
    return VMCI_SUCCESS;
  }
  const QpEndpoint& remaining = creator_left ? pair.creator : pair.attacher;
  if (pair.state == QpState::kAttachedMem || pair.state == QpState::kAttachedNoMem) {
    notices->push_back(QpNotice{remaining.owner, remaining.cid, VMCI_EVENT_QP_PEER_DETACH,
                                pair.handle, caller.cid});
  }
  // Guest memory stays mapped while the remaining endpoint is a guest.
  pair.state = remaining.is_host() ? QpState::kShutdownNoMem : QpState::kShutdownMem;
  return VMCI_SUCCESS;
}

std::vector<vmci_handle> QueuePairBroker::detach_all(const QpEndpoint& caller,
                                                     std::vector<QpNotice>* notices) {
  std::vector<vmci_handle> mine;
  for (const auto& [key, pair] : pairs_) {
    if ((pair.creator_attached && pair.creator.owner == caller.owner) ||
        (pair.has_attacher && pair.attacher.owner == caller.owner)) {
      mine.push_back(pair.handle);
    }
  }
  for (const auto& handle : mine) detach(caller, handle, notices);
  return mine;
}

std::vector<QueuePairBroker::Entry> QueuePairBroker::list() const {
  std::vector<Entry> out;
  out.reserve(pairs_.size());
  for (const auto& [key, p] : pairs_) {
    out.push_back({p.handle, p.flags, p.state, p.produce_size, p.consume_size, p.creator,
                   p.has_attacher, p.attacher});
  }
  return out;
}

}  // namespace vmci::host
