// datagram.h: building and checking VMCI datagrams (spec §3, §4, §7.2).
//
// A datagram travels as one contiguous buffer: the 24-byte struct
// vmci_datagram, then payload_size bytes.
//
//   auto dg = make_datagram(dst, src, payload_bytes);
//   if (check_datagram(dg) == VMCI_SUCCESS) ...
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "vmci/proto/layout.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::proto {

using Bytes = std::vector<uint8_t>;

inline constexpr uint64_t kDatagramHeaderSize = sizeof(vmci_datagram);
inline constexpr uint64_t kMaxDatagramSize = VMCI_MAX_DG_SIZE;
inline constexpr uint64_t kMaxDatagramPayload = VMCI_MAX_DG_SIZE - sizeof(vmci_datagram);

// The header of `dg` (which must hold at least 24 bytes).
inline vmci_datagram header_of(std::span<const uint8_t> dg) {
  vmci_datagram h;
  std::memcpy(&h, dg.data(), sizeof h);
  return h;
}

// VMCI_SUCCESS if `dg` holds a whole datagram (header + exactly payload_size
// bytes) of at most VMCI_MAX_DG_SIZE bytes, else VMCI_ERROR_INVALID_ARGS.
int check_datagram(std::span<const uint8_t> dg);

Bytes make_datagram(vmci_handle dst, vmci_handle src, std::span<const uint8_t> payload);

// An event datagram as the hypervisor sends it: dst (cid, VMCI_EVENT_HANDLER),
// src (VMCI_HYPERVISOR_CONTEXT_ID, VMCI_CONTEXT_RESOURCE_ID), payload
// vmci_event_data then `event_payload`.
Bytes make_event_datagram(vmci_id cid, vmci_event_type event,
                          std::span<const uint8_t> event_payload);
Bytes make_context_event(vmci_id target_cid, vmci_event_type event, vmci_id context_id);
Bytes make_queue_pair_event(vmci_id target_cid, vmci_event_type event, vmci_handle qp,
                            vmci_id peer_id);

// True if `h` is the header of an event datagram (src (0, 0), dst rid
// VMCI_EVENT_HANDLER).
bool is_event_datagram(const vmci_datagram& h);

// The receiving driver's check of an event datagram (spec §7.2): a payload
// under 4 or over 24 bytes is VMCI_ERROR_INVALID_ARGS, an event type that is
// not VMCI_EVENT_VALID is VMCI_ERROR_EVENT_UNKNOWN, else VMCI_SUCCESS.
int check_event_datagram(std::span<const uint8_t> dg);

// The hypervisor's answer to VMCI_RESOURCES_QUERY: bit i set iff
// resources[i] is one of `implemented` (spec §4.1); VMCI_ERROR_INVALID_ARGS
// for a malformed message.
int64_t answer_resources_query(std::span<const uint8_t> dg, std::span<const uint32_t> implemented);

}  // namespace vmci::proto
