// queue_pair_hypercalls.h: the VMCI_QUEUEPAIR_ALLOC and VMCI_QUEUEPAIR_DETACH
// hypercall messages (spec §4.5), built by an endpoint and checked by
// hostpeer.
//
// An alloc message carries FreeBSD's 32-bit page list: one entry per page of
// both queues, headers included. Here the entries are the pages' indexes in
// the pair's memory (there are no guest-physical pages); hostpeer checks
// their number, as it decides the memory itself. The message of a 128 MiB
// pair is larger than VMCI_MAX_DG_SIZE, as in VMCI (spec §11 item 33).
//
//   auto msg = make_qp_alloc_message(handle, VMCI_INVALID_ID, 0, 65536, 65536);
//   QpAllocFields fields;
//   if (parse_qp_alloc_message(msg, &fields) == VMCI_SUCCESS) ...
#pragma once

#include <cstdint>
#include <span>

#include "vmci/proto/datagram.h"

namespace vmci::proto {

// The largest alloc message: a 128 MiB pair's page list.
inline constexpr uint64_t kMaxQpAllocMessage =
    sizeof(vmci_queue_pair_alloc_msg) + (VMCI_MAX_GUEST_QP_MEMORY / 4096 + 2) * sizeof(uint32_t);

// Pages of a pair with these queue sizes: ceil(P/4096) + ceil(C/4096) + 2.
uint64_t qp_page_count(uint64_t produce_size, uint64_t consume_size);

struct QpAllocFields {
  vmci_handle handle;
  vmci_id peer;
  uint32_t flags;
  uint64_t produce_size;  // the sender's own view
  uint64_t consume_size;
};

// dst (0, VMCI_QUEUEPAIR_ALLOC), src VMCI_ANON_SRC_HANDLE.
Bytes make_qp_alloc_message(vmci_handle handle, vmci_id peer, uint32_t flags,
                            uint64_t produce_size, uint64_t consume_size);
// VMCI_SUCCESS, or VMCI_ERROR_INVALID_ARGS if `dg` is not a whole alloc
// message whose page count fits its sizes (spec §4.5).
int parse_qp_alloc_message(std::span<const uint8_t> dg, QpAllocFields* out);

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
