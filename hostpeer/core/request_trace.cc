#include "core/request_trace.h"

#include <unistd.h>

#include "vmci/proto/datagram.h"
#include "vmci/proto/names.h"

namespace vmci::host {

using nlohmann::json;

void RequestTrace::write(const char* kind, json fields) {
  fields["t"] = trace::monotonic_ns();
  fields["hostpeer"] = getpid();
  fields["kind"] = kind;
  file_->write_line(fields.dump());
}

void RequestTrace::started(const Limits& limits) {
  write("start", {{"limits",
                   {{"max_qp_memory_per_context", limits.max_qp_memory_per_context},
                    {"max_queue_pairs_per_context", limits.max_queue_pairs_per_context},
                    {"max_doorbells_per_context", limits.max_doorbells_per_context},
                    {"max_host_datagram_handles", limits.max_host_datagram_handles},
                    {"max_pending_datagram_bytes", limits.max_pending_datagram_bytes}}}});
}

void RequestTrace::admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid,
                            int status) {
  write("admit", {{"peer", peer},
                  {"role", proto::role_name(role)},
                  {"pid", pid},
                  {"cid", cid},
                  {"status", status}});
}

void RequestTrace::removed(uint64_t peer, vmci_id cid) {
  write("remove", {{"peer", peer}, {"cid", cid}});
}

void RequestTrace::request(uint64_t peer, vmci_id cid, const char* op, json fields,
                           int64_t result) {
  fields["peer"] = peer;
  fields["cid"] = cid;
  fields["op"] = op;
  fields["result"] = result;
  write("request", std::move(fields));
}

void RequestTrace::sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
                        int64_t result) {
  json fields = {{"size", datagram.size()}};
  const char* op = "datagram_send";
  if (datagram.size() >= sizeof(vmci_datagram)) {
    const vmci_datagram h = proto::header_of(datagram);
    fields["src"] = handle(h.src);
    fields["dst"] = handle(h.dst);
    fields["payload"] = trace::to_hex(datagram.subspan(sizeof(vmci_datagram)));
    if (h.dst.context == VMCI_HYPERVISOR_CONTEXT_ID) {
      op = "hypercall";
      fields["hypercall"] = proto::hypercall_name(h.dst.resource);
    }
  }
  request(peer, cid, op, std::move(fields), result);
}

void RequestTrace::queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& r,
                                    int status, vmci_handle out) {
  request(peer, cid, "qpair_alloc",
          {{"handle", handle(r.handle)},
           {"peer_context", r.peer},
           {"flags", r.flags},
           {"priv_flags", r.priv_flags},
           {"produce_size", r.produce_size},
           {"consume_size", r.consume_size},
           {"out", handle(out)}},
          status);
}

void RequestTrace::queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle h, int status) {
  request(peer, cid, "qpair_detach", {{"handle", handle(h)}}, status);
}

void RequestTrace::doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource,
                                   uint32_t priv_flags, uint64_t notify_index, int status,
                                   vmci_handle out) {
  request(peer, cid, "doorbell_create",
          {{"resource", resource},
           {"priv_flags", priv_flags},
           {"index", notify_index},
           {"out", handle(out)}},
          status);
}

void RequestTrace::doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle h, int status) {
  request(peer, cid, "doorbell_destroy", {{"handle", handle(h)}}, status);
}

void RequestTrace::doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle h,
                                   uint32_t priv_flags, int status) {
  request(peer, cid, "doorbell_notify", {{"handle", handle(h)}, {"priv_flags", priv_flags}},
          status);
}

void RequestTrace::handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                                 uint32_t priv_flags, int status, vmci_handle out) {
  request(peer, cid, "datagram_create_handle",
          {{"resource", resource}, {"flags", flags}, {"priv_flags", priv_flags}, {"out", handle(out)}},
          status);
}

void RequestTrace::handle_destroy(uint64_t peer, vmci_id cid, vmci_handle h, int status) {
  request(peer, cid, "datagram_destroy_handle", {{"handle", handle(h)}}, status);
}

void RequestTrace::context_id_update(vmci_id old_cid, vmci_id new_cid, int status) {
  request(0, VMCI_HOST_CONTEXT_ID, "update_context_id", {{"old_cid", old_cid}, {"new_cid", new_cid}},
          status);
}

void RequestTrace::delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) {
  const vmci_datagram h = proto::header_of(datagram);
  write("deliver", {{"peer", peer},
                    {"cid", cid},
                    {"what", "datagram"},
                    {"src", handle(h.src)},
                    {"dst", handle(h.dst)},
                    {"payload", trace::to_hex(datagram.subspan(sizeof(vmci_datagram)))}});
}

void RequestTrace::rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) {
  write("deliver", {{"peer", peer},
                    {"cid", cid},
                    {"what", "ring"},
                    {"handle", handle(doorbell)},
                    {"index", index}});
}

}  // namespace vmci::host
