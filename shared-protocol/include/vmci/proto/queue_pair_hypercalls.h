// queue_pair_hypercalls.h: the VMCI_QUEUEPAIR_ALLOC and VMCI_QUEUEPAIR_DETACH
// hypercall messages (spec §4.5), built by an endpoint and checked by
// hostpeer.
//
// An alloc message carries a page list: one entry per page of both queues,
// headers included (the produce queue's header page, its data pages, then
// the consume queue's likewise). Our guest library sends FreeBSD's 32-bit
// list of the pages' indexes in the pair's memory (hostpeer decides that
// memory and checks only their number); a guest that supplies its own
// memory (frame.h's kFeatureGuestMemory: a real guest kernel behind the PCI
// device) sends its pages' guest-physical page numbers, u32 or u64 as its
// driver and device agreed (VMCI_CAPS_PPN64). The message of a 128 MiB pair
// is larger than VMCI_MAX_DG_SIZE, as in VMCI (spec §11 item 33).
//
//   auto msg = make_qp_alloc_message(handle, VMCI_INVALID_ID, 0, 65536, 65536);
//   QpAllocFields fields;
//   if (parse_qp_alloc_message(msg, &fields) == VMCI_SUCCESS) ...
#pragma once

#include <cstdint>
#include <span>

#include "vmci/proto/datagram.h"

namespace vmci::proto {

// The largest alloc message: a 128 MiB pair's page list, of 32-bit and of
// 64-bit page numbers.
inline constexpr uint64_t kMaxQpAllocMessage =
    sizeof(vmci_queue_pair_alloc_msg) + (VMCI_MAX_GUEST_QP_MEMORY / 4096 + 2) * sizeof(uint32_t);
inline constexpr uint64_t kMaxQpAllocMessage64 =
    sizeof(vmci_queue_pair_alloc_msg) + (VMCI_MAX_GUEST_QP_MEMORY / 4096 + 2) * sizeof(uint64_t);

// Pages of a pair with these queue sizes: ceil(P/4096) + ceil(C/4096) + 2.
uint64_t qp_page_count(uint64_t produce_size, uint64_t consume_size);

struct QpAllocFields {
  vmci_handle handle;
  vmci_id peer;
  uint32_t flags;
  uint64_t produce_size;  // the sender's own view
  uint64_t consume_size;
  uint64_t num_ppns;
};

// dst (0, VMCI_QUEUEPAIR_ALLOC), src VMCI_ANON_SRC_HANDLE.
Bytes make_qp_alloc_message(vmci_handle handle, vmci_id peer, uint32_t flags,
                            uint64_t produce_size, uint64_t consume_size);
// As above with the page numbers given, each `ppn_size` (4 or 8) bytes
// (a guest kernel's message).
Bytes make_qp_alloc_message(vmci_handle handle, vmci_id peer, uint32_t flags,
                            uint64_t produce_size, uint64_t consume_size,
                            std::span<const uint64_t> ppns, size_t ppn_size);
// VMCI_SUCCESS, or VMCI_ERROR_INVALID_ARGS if `dg` is not a whole alloc
// message whose page count fits its sizes (spec §4.5), with page numbers
// of `ppn_size` (4 or 8) bytes.
int parse_qp_alloc_message(std::span<const uint8_t> dg, QpAllocFields* out,
                           size_t ppn_size = sizeof(uint32_t));
// Page number i (< num_ppns) of an alloc message that parsed with ppn_size.
uint64_t qp_alloc_ppn(std::span<const uint8_t> dg, uint64_t i, size_t ppn_size);

// dst (0, VMCI_QUEUEPAIR_DETACH), src VMCI_ANON_SRC_HANDLE.
Bytes make_qp_detach_message(vmci_handle handle);
int parse_qp_detach_message(std::span<const uint8_t> dg, vmci_handle* out);

// The checks vmci_qpair_alloc makes before anything else, in FreeBSD's
// order (spec §6.2): sizes over 128 MiB in total (or overflowing) are
// VMCI_ERROR_NO_RESOURCES; NONBLOCK, a missing out-pointer, both sizes 0 or
// an unknown flag are VMCI_ERROR_INVALID_ARGS.
int check_qpair_alloc(bool have_qpair, bool have_handle, uint64_t produce_size,
                      uint64_t consume_size, uint32_t flags);

// True for a datagram to (0, VMCI_QUEUEPAIR_ALLOC): the one kind that may
// exceed VMCI_MAX_DG_SIZE (up to kMaxQpAllocMessage).
bool is_qp_alloc_hypercall(std::span<const uint8_t> dg);

}  // namespace vmci::proto
