// The Hypervisor's public requests: each runs the request and, when
// tracing (vmci-hostpeer --trace), writes it and its result.
#include "core/hypervisor.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/names.h"

namespace vmci::host {

using nlohmann::json;

void Hypervisor::trace_to(std::shared_ptr<RequestTrace> trace) {
  trace_ = std::move(trace);
  if (trace_) trace_->started(limits_);
}

Admission Hypervisor::admit(const PeerHello& hello, PeerSink* sink) {
  Admission admission = admit_untraced(hello, sink);
  if (trace_) trace_->admitted(admission.peer, hello.role, hello.pid, admission.cid, admission.status);
  return admission;
}

int64_t Hypervisor::send(PeerId peer, std::span<const uint8_t> datagram,
                         std::shared_ptr<const QueuePairMemory>* memory) {
  const int64_t result = send_untraced(peer, datagram, memory);
  if (!trace_) return result;
  json fields = {{"size", datagram.size()}};
  const char* op = "datagram_send";
  if (datagram.size() >= sizeof(vmci_datagram)) {
    const vmci_datagram h = proto::header_of(datagram);
    fields["src"] = RequestTrace::handle(h.src);
    fields["dst"] = RequestTrace::handle(h.dst);
    fields["payload"] = trace::to_hex(datagram.subspan(sizeof(vmci_datagram)));
    if (h.dst.context == VMCI_HYPERVISOR_CONTEXT_ID) {
      op = "hypercall";
      fields["hypercall"] = proto::hypercall_name(h.dst.resource);
    }
  }
  trace_->request(peer, cid_of(peer), op, std::move(fields), result);
  return result;
}

QueuePairReply Hypervisor::qpair_alloc(PeerId peer, const QpAllocRequest& request) {
  QueuePairReply reply = qpair_alloc_untraced(peer, request);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "qpair_alloc",
                    {{"handle", RequestTrace::handle(request.handle)},
                     {"peer_context", request.peer},
                     {"flags", request.flags},
                     {"priv_flags", request.priv_flags},
                     {"produce_size", request.produce_size},
                     {"consume_size", request.consume_size},
                     {"out", RequestTrace::handle(reply.handle)}},
                    reply.status);
  }
  return reply;
}

int Hypervisor::qpair_detach(PeerId peer, vmci_handle handle) {
  const int result = qpair_detach_untraced(peer, handle);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "qpair_detach", {{"handle", RequestTrace::handle(handle)}},
                    result);
  }
  return result;
}

HandleResult Hypervisor::create_host_doorbell(PeerId peer, vmci_id resource, uint32_t priv_flags,
                                              uint64_t notify_index) {
  const HandleResult result = create_host_doorbell_untraced(peer, resource, priv_flags, notify_index);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "doorbell_create",
                    {{"resource", resource},
                     {"priv_flags", priv_flags},
                     {"index", notify_index},
                     {"out", RequestTrace::handle(result.handle)}},
                    result.status);
  }
  return result;
}

int Hypervisor::destroy_host_doorbell(PeerId peer, vmci_handle handle) {
  const int result = destroy_host_doorbell_untraced(peer, handle);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "doorbell_destroy",
                    {{"handle", RequestTrace::handle(handle)}}, result);
  }
  return result;
}

int Hypervisor::notify_doorbell(PeerId peer, vmci_handle handle, uint32_t priv_flags) {
  const int result = notify_doorbell_untraced(peer, handle, priv_flags);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "doorbell_notify",
                    {{"handle", RequestTrace::handle(handle)}, {"priv_flags", priv_flags}}, result);
  }
  return result;
}

HandleResult Hypervisor::create_host_handle(PeerId peer, vmci_id resource, uint32_t flags,
                                            uint32_t priv_flags) {
  const HandleResult result = create_host_handle_untraced(peer, resource, flags, priv_flags);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "datagram_create_handle",
                    {{"resource", resource},
                     {"flags", flags},
                     {"priv_flags", priv_flags},
                     {"out", RequestTrace::handle(result.handle)}},
                    result.status);
  }
  return result;
}

HandleResult Hypervisor::destroy_host_handle(PeerId peer, vmci_handle handle) {
  const HandleResult result = destroy_host_handle_untraced(peer, handle);
  if (trace_) {
    trace_->request(peer, cid_of(peer), "datagram_destroy_handle",
                    {{"handle", RequestTrace::handle(handle)}}, result.status);
  }
  return result;
}

int Hypervisor::update_context_id(vmci_id old_cid, vmci_id new_cid) {
  const int result = update_context_id_untraced(old_cid, new_cid);
  if (trace_) {
    trace_->request(0, VMCI_HOST_CONTEXT_ID, "update_context_id",
                    {{"old_cid", old_cid}, {"new_cid", new_cid}}, result);
  }
  return result;
}

vmci_id Hypervisor::cid_of(PeerId peer) const {
  auto it = peers_.find(peer);
  return it == peers_.end() ? VMCI_INVALID_ID : it->second.cid;
}

}  // namespace vmci::host
