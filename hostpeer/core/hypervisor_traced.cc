// The Hypervisor's public requests: each runs the request and, when
// watched (vmci-hostpeer --trace, --capture), reports it and its result.
#include "core/hypervisor.h"

namespace vmci::host {

void Hypervisor::observe_with(std::shared_ptr<RequestObserver> observer) {
  observer_ = std::move(observer);
  if (observer_) observer_->started(limits_);
}

Admission Hypervisor::admit(const PeerHello& hello, PeerSink* sink) {
  Admission admission = admit_untraced(hello, sink);
  if (observer_) {
    observer_->admitted(admission.peer, hello.role, hello.pid, admission.cid, admission.status);
  }
  return admission;
}

int64_t Hypervisor::send(PeerId peer, std::span<const uint8_t> datagram,
                         std::shared_ptr<const QueuePairMemory>* memory) {
  const int64_t result = send_untraced(peer, datagram, memory);
  if (observer_) observer_->sent(peer, cid_of(peer), datagram, result);
  return result;
}

QueuePairReply Hypervisor::qpair_alloc(PeerId peer, const QpAllocRequest& request) {
  QueuePairReply reply = qpair_alloc_untraced(peer, request);
  if (observer_) {
    observer_->queue_pair_alloc(peer, cid_of(peer), request, reply.status, reply.handle);
  }
  return reply;
}

int Hypervisor::qpair_detach(PeerId peer, vmci_handle handle) {
  const int result = qpair_detach_untraced(peer, handle);
  if (observer_) observer_->queue_pair_detach(peer, cid_of(peer), handle, result);
  return result;
}

HandleResult Hypervisor::create_host_doorbell(PeerId peer, vmci_id resource, uint32_t priv_flags,
                                              uint64_t notify_index) {
  const HandleResult result = create_host_doorbell_untraced(peer, resource, priv_flags, notify_index);
  if (observer_) {
    observer_->doorbell_create(peer, cid_of(peer), resource, priv_flags, notify_index,
                               result.status, result.handle);
  }
  return result;
}

int Hypervisor::destroy_host_doorbell(PeerId peer, vmci_handle handle) {
  const int result = destroy_host_doorbell_untraced(peer, handle);
  if (observer_) observer_->doorbell_destroy(peer, cid_of(peer), handle, result);
  return result;
}

int Hypervisor::notify_doorbell(PeerId peer, vmci_handle handle, uint32_t priv_flags) {
  const int result = notify_doorbell_untraced(peer, handle, priv_flags);
  if (observer_) observer_->doorbell_notify(peer, cid_of(peer), handle, priv_flags, result);
  return result;
}

HandleResult Hypervisor::create_host_handle(PeerId peer, vmci_id resource, uint32_t flags,
                                            uint32_t priv_flags) {
  const HandleResult result = create_host_handle_untraced(peer, resource, flags, priv_flags);
  if (observer_) {
    observer_->handle_create(peer, cid_of(peer), resource, flags, priv_flags, result.status,
                             result.handle);
  }
  return result;
}

HandleResult Hypervisor::destroy_host_handle(PeerId peer, vmci_handle handle) {
  const HandleResult result = destroy_host_handle_untraced(peer, handle);
  if (observer_) observer_->handle_destroy(peer, cid_of(peer), handle, result.status);
  return result;
}

int Hypervisor::update_context_id(vmci_id old_cid, vmci_id new_cid) {
  const int result = update_context_id_untraced(old_cid, new_cid);
  if (observer_) observer_->context_id_update(old_cid, new_cid, result);
  return result;
}

vmci_id Hypervisor::cid_of(PeerId peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? VMCI_INVALID_ID : it->second.cid;
}

}  // namespace vmci::host
