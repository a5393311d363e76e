#include "core/request_trace.h"

#include <unistd.h>

#include "vmci/proto/datagram.h"

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
