#include "guest_queue_pairs.h"

#include <unistd.h>

#include "vmci/proto/handles.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/proto/queue_pair_mapping.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::guest::internal {

GuestQueuePairs::GuestQueuePairs(Hypercall hypercall, LocalEvent local_event)
    : hypercall_(std::move(hypercall)), local_event_(std::move(local_event)) {}

vmci_id GuestQueuePairs::next_resource() {
  for (;;) {
    const vmci_id rid = next_resource_;
    next_resource_ = rid + 1 == VMCI_INVALID_ID ? VMCI_RESERVED_RESOURCE_ID_MAX + 1 : rid + 1;
    bool used = false;
    for (const auto& [key, entry] : entries_) used = used || entry.handle.resource == rid;
    if (!used) return rid;
  }
}

int GuestQueuePairs::alloc(vmci_id own_cid, std::unique_ptr<QueuePair>* qpair,
                           vmci_handle* handle, uint64_t produce_size, uint64_t consume_size,
                           vmci_id peer, uint32_t flags, uint32_t priv_flags) {
  const int checked = proto::check_qpair_alloc(qpair != nullptr, handle != nullptr, produce_size,
                                               consume_size, flags);
  if (checked != VMCI_SUCCESS) return checked;
  if (priv_flags != VMCI_NO_PRIVILEGE_FLAGS) return VMCI_ERROR_NO_ACCESS;

  std::lock_guard lock(mutex_);
  if (!proto::is_invalid(*handle)) {
    auto it = entries_.find(proto::handle_key(*handle));
    if (it != entries_.end()) {
      // A guest cannot attach twice, nor locally to a pair that is not local.
      if (!it->second.local) return VMCI_ERROR_ALREADY_EXISTS;
      return attach_local(it->second, produce_size, consume_size, flags, qpair);
    }
  }
  vmci_handle h = *handle;
  if (proto::is_invalid(h)) h = VMCI_MAKE_HANDLE(own_cid, next_resource());
  int status;
  if (flags & VMCI_QPFLAG_LOCAL) {
    if (h.context != own_cid || (peer != VMCI_INVALID_ID && peer != own_cid)) {
      return VMCI_ERROR_NO_ACCESS;
    }
    if (flags & VMCI_QPFLAG_ATTACH_ONLY) return VMCI_ERROR_NOT_FOUND;
    status = create_local(h, produce_size, consume_size, flags, qpair);
  } else {
    status = create_remote(h, produce_size, consume_size, peer, flags, qpair);
  }
  if (status >= VMCI_SUCCESS) {
    *handle = h;
    status = VMCI_SUCCESS;  // every result >= 0 is success (spec §6.4)
  }
  return status;
}

int GuestQueuePairs::attach_local(Entry& entry, uint64_t produce_size, uint64_t consume_size,
                                  uint32_t flags, std::unique_ptr<QueuePair>* qpair) {
  if (entry.ref_count >= 2) return VMCI_ERROR_UNAVAILABLE;
  if (entry.produce_size != consume_size || entry.consume_size != produce_size ||
      entry.flags != (flags & ~VMCI_QPFLAG_ATTACH_ONLY)) {
    return VMCI_ERROR_QUEUEPAIR_MISMATCH;
  }
  // The attacher's produce queue is the creator's consume queue.
  const proto::QueuePairView& c = entry.creator_view;
  const proto::QueuePairView swapped{c.consume_header, c.consume_data, c.consume_size,
                                     c.produce_header, c.produce_data, c.produce_size};
  *qpair = std::make_unique<QueuePair>(entry.handle, swapped, entry.memory);
  ++entry.ref_count;
  local_event_(VMCI_EVENT_QP_PEER_ATTACH, entry.handle);
  return VMCI_SUCCESS;
}

int GuestQueuePairs::create_local(vmci_handle handle, uint64_t produce_size,
                                  uint64_t consume_size, uint32_t flags,
                                  std::unique_ptr<QueuePair>* qpair) {
  if (entries_.size() >= kMaxPairs) return VMCI_ERROR_NO_RESOURCES;
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  std::string error;
  auto memory = proto::SharedMemory::anonymous(layout.total, &error);
  if (!memory) return VMCI_ERROR_NO_MEM;
  // The guest initialises a local pair's headers itself (spec §6.3).
  const proto::QueuePairView view = proto::creator_view(memory->data(), produce_size, consume_size);
  proto::init_queue_header(view.produce_header, handle);
  proto::init_queue_header(view.consume_header, handle);
  *qpair = std::make_unique<QueuePair>(handle, view, memory);
  entries_[proto::handle_key(handle)] =
      Entry{handle, flags, produce_size, consume_size, true, 1, std::move(memory), view};
  return VMCI_SUCCESS;
}

int GuestQueuePairs::create_remote(vmci_handle handle, uint64_t produce_size,
                                   uint64_t consume_size, vmci_id peer, uint32_t flags,
                                   std::unique_ptr<QueuePair>* qpair) {
  Connection::Reply reply =
      hypercall_(proto::make_qp_alloc_message(handle, peer, flags, produce_size, consume_size), {});
  if (reply.result < VMCI_SUCCESS) return static_cast<int>(reply.result);
  std::string error;
  std::unique_ptr<QueuePair> mapped;
  if (reply.fds.size() == 1) {
    mapped = proto::map_queue_pair(handle, reply.fds[0], -1, produce_size, consume_size, &error);
  }
  if (!mapped) {
    // hostpeer made the pair but it cannot be used here: undo it.
    hypercall_(proto::make_qp_detach_message(handle), {});
    return VMCI_ERROR_NO_RESOURCES;
  }
  entries_[proto::handle_key(handle)] =
      Entry{handle, flags, produce_size, consume_size, false, 1, mapped->keep_alive(), {}};
  *qpair = std::move(mapped);
  return static_cast<int>(reply.result);
}

int GuestQueuePairs::detach(std::unique_ptr<QueuePair>* qpair) {
  if (qpair == nullptr || !*qpair) return VMCI_ERROR_INVALID_ARGS;
  const vmci_handle handle = (*qpair)->handle();
  qpair->reset();  // whatever happens next (spec §11 item 17)
  std::lock_guard lock(mutex_);
  auto it = entries_.find(proto::handle_key(handle));
  if (it == entries_.end()) return VMCI_ERROR_NOT_FOUND;
  Entry& entry = it->second;
  if (entry.local) {
    if (entry.ref_count > 1) local_event_(VMCI_EVENT_QP_PEER_DETACH, handle);
  } else {
    // Unmapping costs about as much as the round trip (a TLB shootdown):
    // it overlaps hostpeer's work instead of following it.
    const Connection::Reply reply =
        hypercall_(proto::make_qp_detach_message(handle), [&entry] { entry.memory.reset(); });
    if (reply.result < VMCI_SUCCESS) return static_cast<int>(reply.result);  // entry kept
  }
  if (--entry.ref_count == 0) entries_.erase(it);
  return VMCI_SUCCESS;
}

}  // namespace vmci::guest::internal
