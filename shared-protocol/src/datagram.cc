#include "vmci/proto/datagram.h"

#include <algorithm>

namespace vmci::proto {

int check_datagram(std::span<const uint8_t> dg) {
  if (dg.size() < kDatagramHeaderSize || dg.size() > kMaxDatagramSize) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  const vmci_datagram h = header_of(dg);
  if (h.payload_size > kMaxDatagramPayload || h.payload_size != dg.size() - kDatagramHeaderSize) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  return VMCI_SUCCESS;
}

Bytes make_datagram(vmci_handle dst, vmci_handle src, std::span<const uint8_t> payload) {
  Bytes out(kDatagramHeaderSize + payload.size());
  const vmci_datagram h{dst, src, payload.size()};
  std::memcpy(out.data(), &h, sizeof h);
  std::copy(payload.begin(), payload.end(), out.begin() + kDatagramHeaderSize);
  return out;
}

Bytes make_event_datagram(vmci_id cid, vmci_event_type event,
                          std::span<const uint8_t> event_payload) {
  Bytes payload(sizeof(vmci_event_data) + event_payload.size());
  vmci_event_data ed{};
  ed.event = event;
  std::memcpy(payload.data(), &ed, sizeof ed);
  std::copy(event_payload.begin(), event_payload.end(), payload.begin() + sizeof ed);
  return make_datagram(VMCI_MAKE_HANDLE(cid, VMCI_EVENT_HANDLER),
                       VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, VMCI_CONTEXT_RESOURCE_ID),
                       payload);
}

Bytes make_context_event(vmci_id target_cid, vmci_event_type event, vmci_id context_id) {
  vmci_event_payload_context p{};
  p.context_id = context_id;
  return make_event_datagram(target_cid, event,
                             std::span(reinterpret_cast<const uint8_t*>(&p), sizeof p));
}

Bytes make_queue_pair_event(vmci_id target_cid, vmci_event_type event, vmci_handle qp,
                            vmci_id peer_id) {
  vmci_event_payload_qp p{};
  p.handle = qp;
  p.peer_id = peer_id;
  return make_event_datagram(target_cid, event,
                             std::span(reinterpret_cast<const uint8_t*>(&p), sizeof p));
}

bool is_event_datagram(const vmci_datagram& h) {
  return h.src.context == VMCI_HYPERVISOR_CONTEXT_ID &&
         h.src.resource == VMCI_CONTEXT_RESOURCE_ID && h.dst.resource == VMCI_EVENT_HANDLER;
}

int check_event_datagram(std::span<const uint8_t> dg) {
  if (check_datagram(dg) != VMCI_SUCCESS) return VMCI_ERROR_INVALID_ARGS;
  const vmci_datagram h = header_of(dg);
  if (h.payload_size < sizeof(uint32_t) || h.payload_size > sizeof(vmci_event_data_max)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  uint32_t event;
  std::memcpy(&event, dg.data() + kDatagramHeaderSize, sizeof event);
  if (!VMCI_EVENT_VALID(event)) return VMCI_ERROR_EVENT_UNKNOWN;
  return VMCI_SUCCESS;
}

int64_t answer_resources_query(std::span<const uint8_t> dg, std::span<const uint32_t> implemented) {
  if (check_datagram(dg) != VMCI_SUCCESS || dg.size() < sizeof(vmci_resources_query_hdr)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  uint32_t count;
  std::memcpy(&count, dg.data() + offsetof(vmci_resources_query_hdr, num_resources), sizeof count);
  if (count > VMCI_RESOURCE_QUERY_MAX_NUM ||
      dg.size() < sizeof(vmci_resources_query_hdr) + uint64_t{count} * sizeof(vmci_id)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  int64_t mask = 0;
  for (uint32_t i = 0; i < count; ++i) {
    vmci_id rid;
    std::memcpy(&rid, dg.data() + sizeof(vmci_resources_query_hdr) + i * sizeof rid, sizeof rid);
    if (std::find(implemented.begin(), implemented.end(), rid) != implemented.end()) {
      mask |= int64_t{1} << i;
    }
  }
  return mask;
}

}  // namespace vmci::proto
