// layout.h: the byte layouts both sides rely on, pinned at compile time.
// Any change to a struct in vmci_defs.h, vmci_call_defs.h or frame.h that
// moves a byte fails the build here.
#pragma once

#include <bit>
#include <cstddef>

#include "vmci/proto/frame.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::proto::layout {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; big-endian hosts need byte swapping");

#define VMCI_PIN_SIZE(type, size) static_assert(sizeof(type) == (size), #type " size")
#define VMCI_PIN_OFFSET(type, field, offset) \
  static_assert(offsetof(type, field) == (offset), #type "." #field " offset")

VMCI_PIN_SIZE(vmci_handle, 8);
VMCI_PIN_OFFSET(vmci_handle, context, 0);
VMCI_PIN_OFFSET(vmci_handle, resource, 4);

VMCI_PIN_SIZE(vmci_datagram, 24);
VMCI_PIN_OFFSET(vmci_datagram, dst, 0);
VMCI_PIN_OFFSET(vmci_datagram, src, 8);
VMCI_PIN_OFFSET(vmci_datagram, payload_size, 16);

VMCI_PIN_SIZE(vmci_queue_header, 24);
VMCI_PIN_OFFSET(vmci_queue_header, handle, 0);
VMCI_PIN_OFFSET(vmci_queue_header, producer_tail, 8);
VMCI_PIN_OFFSET(vmci_queue_header, consumer_head, 16);

VMCI_PIN_SIZE(vmci_resources_query_hdr, 32);
VMCI_PIN_OFFSET(vmci_resources_query_hdr, num_resources, 24);
VMCI_PIN_OFFSET(vmci_resources_query_msg, resources, 8);
static_assert(VMCI_RESOURCE_QUERY_MAX_SIZE == 156);

VMCI_PIN_SIZE(vmci_notify_bitmap_set_msg, 32);
VMCI_PIN_OFFSET(vmci_notify_bitmap_set_msg, bitmap_ppn, 24);

VMCI_PIN_SIZE(vmci_doorbell_link_msg, 40);
VMCI_PIN_OFFSET(vmci_doorbell_link_msg, handle, 24);
VMCI_PIN_OFFSET(vmci_doorbell_link_msg, notify_idx, 32);
VMCI_PIN_SIZE(vmci_doorbell_unlink_msg, 32);
VMCI_PIN_OFFSET(vmci_doorbell_unlink_msg, handle, 24);
VMCI_PIN_SIZE(vmci_doorbell_notify_msg, 32);
VMCI_PIN_OFFSET(vmci_doorbell_notify_msg, handle, 24);

VMCI_PIN_SIZE(vmci_event_data, 8);
VMCI_PIN_OFFSET(vmci_event_data, event, 0);
VMCI_PIN_SIZE(vmci_event_payload_context, 8);
VMCI_PIN_OFFSET(vmci_event_payload_context, context_id, 0);
VMCI_PIN_SIZE(vmci_event_payload_qp, 16);
VMCI_PIN_OFFSET(vmci_event_payload_qp, handle, 0);
VMCI_PIN_OFFSET(vmci_event_payload_qp, peer_id, 8);
VMCI_PIN_SIZE(vmci_event_data_max, 24);
VMCI_PIN_SIZE(vmci_event_msg, 32);
VMCI_PIN_SIZE(vmci_event_context, 40);
VMCI_PIN_SIZE(vmci_event_qp, 48);

VMCI_PIN_SIZE(vmci_queue_pair_alloc_msg, 64);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, handle, 24);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, peer, 32);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, flags, 36);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, produce_size, 40);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, consume_size, 48);
VMCI_PIN_OFFSET(vmci_queue_pair_alloc_msg, num_ppns, 56);
VMCI_PIN_SIZE(vmci_queue_pair_detach_msg, 32);
VMCI_PIN_OFFSET(vmci_queue_pair_detach_msg, handle, 24);

static_assert(VMCI_MAX_DG_SIZE == 69632);
static_assert(VMCI_MAX_DG_PAYLOAD_SIZE == 69608);
static_assert(VMCI_MAX_DATAGRAM_QUEUE_SIZE == 139264);
static_assert(VMCI_MAX_DATAGRAM_AND_EVENT_QUEUE_SIZE == 188416);

VMCI_PIN_SIZE(FrameHeader, 16);
VMCI_PIN_OFFSET(FrameHeader, magic, 0);
VMCI_PIN_OFFSET(FrameHeader, type, 4);
VMCI_PIN_OFFSET(FrameHeader, flags, 6);
VMCI_PIN_OFFSET(FrameHeader, body_size, 8);
VMCI_PIN_OFFSET(FrameHeader, request_id, 12);
VMCI_PIN_SIZE(HelloBody, 16);
VMCI_PIN_OFFSET(HelloBody, role, 4);
VMCI_PIN_OFFSET(HelloBody, features, 5);
VMCI_PIN_OFFSET(HelloBody, requested_cid, 8);
VMCI_PIN_OFFSET(HelloBody, priv_flags, 12);
VMCI_PIN_SIZE(WelcomeBody, 16);
VMCI_PIN_OFFSET(WelcomeBody, status, 4);
VMCI_PIN_OFFSET(WelcomeBody, context_id, 8);
VMCI_PIN_SIZE(ResultBody, 16);
VMCI_PIN_OFFSET(ResultBody, handle, 8);
VMCI_PIN_SIZE(DeliveredBody, 8);
VMCI_PIN_SIZE(HandleCreateBody, 16);
VMCI_PIN_SIZE(HandleDestroyBody, 8);
VMCI_PIN_SIZE(GoodbyeBody, 8);
VMCI_PIN_SIZE(GuestMemoryBody, 8);
VMCI_PIN_SIZE(GuestMemoryRegion, 32);
VMCI_PIN_OFFSET(GuestMemoryRegion, file_offset, 16);
VMCI_PIN_OFFSET(GuestMemoryRegion, fd_index, 24);
VMCI_PIN_SIZE(QueuePairMemoryBody, 16);
VMCI_PIN_OFFSET(QueuePairMemoryBody, extent_count, 8);
VMCI_PIN_SIZE(QueuePairExtent, 16);
VMCI_PIN_OFFSET(QueuePairExtent, page_count, 8);

#undef VMCI_PIN_SIZE
#undef VMCI_PIN_OFFSET

}  // namespace vmci::proto::layout
