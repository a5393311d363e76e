#include "core/request_capture.h"

#include <cstring>

namespace vmci::host {

RequestCapture::Body& RequestCapture::Body::put(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + size);
  return *this;
}

void RequestCapture::write(CaptureKind kind, uint64_t peer, vmci_id cid, int64_t result,
                           std::span<const uint8_t> body) {
  CaptureRecordHeader header{};
  std::memcpy(header.magic, "VMCI", 4);
  header.version = kCaptureVersion;
  header.kind = static_cast<uint8_t>(kind);
  header.header_size = sizeof header;
  header.peer = peer;
  header.cid = cid;
  header.body_size = static_cast<uint32_t>(body.size());
  header.result = result;
  std::vector<uint8_t> record(sizeof header + body.size());
  std::memcpy(record.data(), &header, sizeof header);
  if (!body.empty()) std::memcpy(record.data() + sizeof header, body.data(), body.size());
  file_->write_packet(record);
}

void RequestCapture::started(const Limits& limits) {
  Body body;
  body.u64(limits.max_qp_memory_per_context)
      .u64(limits.max_queue_pairs_per_context)
      .u64(limits.max_doorbells_per_context)
      .u64(limits.max_host_datagram_handles)
      .u64(limits.max_pending_datagram_bytes);
  write(CaptureKind::kStart, 0, VMCI_HOST_CONTEXT_ID, 0, body.bytes());
}

void RequestCapture::admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid,
                              int status) {
  const uint8_t head[8] = {static_cast<uint8_t>(role)};
  Body body;
  body.put(head, sizeof head).u64(static_cast<uint64_t>(pid));
  write(CaptureKind::kAdmit, peer, cid, status, body.bytes());
}

void RequestCapture::removed(uint64_t peer, vmci_id cid) {
  write(CaptureKind::kRemove, peer, cid, 0, {});
}

void RequestCapture::sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
                          int64_t result) {
  write(CaptureKind::kSend, peer, cid, result, datagram);
}

void RequestCapture::queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& r,
                                      int status, vmci_handle out) {
  Body body;
  body.handle(r.handle)
      .u32(r.peer)
      .u32(r.flags)
      .u32(r.priv_flags)
      .u32(0)
      .u64(r.produce_size)
      .u64(r.consume_size)
      .handle(out);
  write(CaptureKind::kQueuePairAlloc, peer, cid, status, body.bytes());
}

void RequestCapture::queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle handle,
                                       int status) {
  Body body;
  body.handle(handle);
  write(CaptureKind::kQueuePairDetach, peer, cid, status, body.bytes());
}

void RequestCapture::doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource,
                                     uint32_t priv_flags, uint64_t notify_index, int status,
                                     vmci_handle out) {
  Body body;
  body.u32(resource).u32(priv_flags).u64(notify_index).handle(out);
  write(CaptureKind::kDoorbellCreate, peer, cid, status, body.bytes());
}

void RequestCapture::doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle handle,
                                      int status) {
  Body body;
  body.handle(handle);
  write(CaptureKind::kDoorbellDestroy, peer, cid, status, body.bytes());
}

void RequestCapture::doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle handle,
                                     uint32_t priv_flags, int status) {
  Body body;
  body.handle(handle).u32(priv_flags).u32(0);
  write(CaptureKind::kDoorbellNotify, peer, cid, status, body.bytes());
}

void RequestCapture::handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                                   uint32_t priv_flags, int status, vmci_handle out) {
  Body body;
  body.u32(resource).u32(flags).u32(priv_flags).u32(0).handle(out);
  write(CaptureKind::kHandleCreate, peer, cid, status, body.bytes());
}

void RequestCapture::handle_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) {
  Body body;
  body.handle(handle);
  write(CaptureKind::kHandleDestroy, peer, cid, status, body.bytes());
}

void RequestCapture::context_id_update(vmci_id old_cid, vmci_id new_cid, int status) {
  Body body;
  body.u32(old_cid).u32(new_cid);
  write(CaptureKind::kContextIdUpdate, 0, VMCI_HOST_CONTEXT_ID, status, body.bytes());
}

void RequestCapture::delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) {
  write(CaptureKind::kDeliver, peer, cid, 0, datagram);
}

void RequestCapture::rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) {
  Body body;
  body.handle(doorbell).u64(index);
  write(CaptureKind::kRing, peer, cid, 0, body.bytes());
}

}  // namespace vmci::host
