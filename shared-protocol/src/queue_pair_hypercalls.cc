#include "vmci/proto/queue_pair_hypercalls.h"

#include <vector>

#include "vmci/proto/queue.h"

namespace vmci::proto {
namespace {

uint64_t pages(uint64_t bytes) { return (bytes + kQueuePageSize - 1) / kQueuePageSize; }

constexpr vmci_handle kAllocHypercall = {VMCI_HYPERVISOR_CONTEXT_ID, VMCI_QUEUEPAIR_ALLOC};
constexpr vmci_handle kDetachHypercall = {VMCI_HYPERVISOR_CONTEXT_ID, VMCI_QUEUEPAIR_DETACH};

}  // namespace

uint64_t qp_page_count(uint64_t produce_size, uint64_t consume_size) {
  return pages(produce_size) + pages(consume_size) + 2;
}

Bytes make_qp_alloc_message(vmci_handle handle, vmci_id peer, uint32_t flags,
                            uint64_t produce_size, uint64_t consume_size) {
  const uint64_t num_ppns = qp_page_count(produce_size, consume_size);
  const size_t fixed = sizeof(vmci_queue_pair_alloc_msg) - sizeof(vmci_datagram);
  Bytes payload(fixed + num_ppns * sizeof(uint32_t));
  vmci_queue_pair_alloc_msg msg{};
  msg.handle = handle;
  msg.peer = peer;
  msg.flags = flags;
  msg.produce_size = produce_size;
  msg.consume_size = consume_size;
  msg.num_ppns = num_ppns;
  std::memcpy(payload.data(), reinterpret_cast<const uint8_t*>(&msg) + sizeof(vmci_datagram),
              fixed);
  for (uint64_t i = 0; i < num_ppns; ++i) {
    const auto ppn = static_cast<uint32_t>(i);
    std::memcpy(payload.data() + fixed + i * sizeof ppn, &ppn, sizeof ppn);
  }
  return make_datagram(kAllocHypercall, VMCI_ANON_SRC_HANDLE, payload);
}

Bytes make_qp_alloc_message(vmci_handle handle, vmci_id peer, uint32_t flags,
                            uint64_t produce_size, uint64_t consume_size,
                            std::span<const uint64_t> ppns, size_t ppn_size) {
  const size_t fixed = sizeof(vmci_queue_pair_alloc_msg) - sizeof(vmci_datagram);
  Bytes payload(fixed + ppns.size() * ppn_size);
  vmci_queue_pair_alloc_msg msg{};
  msg.handle = handle;
  msg.peer = peer;
  msg.flags = flags;
  msg.produce_size = produce_size;
  msg.consume_size = consume_size;
  msg.num_ppns = ppns.size();
  std::memcpy(payload.data(), reinterpret_cast<const uint8_t*>(&msg) + sizeof(vmci_datagram),
              fixed);
  for (size_t i = 0; i < ppns.size(); ++i) {
    const uint64_t wide = ppns[i];
    const auto narrow = static_cast<uint32_t>(ppns[i]);
    std::memcpy(payload.data() + fixed + i * ppn_size,
                ppn_size == sizeof wide ? static_cast<const void*>(&wide) : &narrow, ppn_size);
  }
  return make_datagram(kAllocHypercall, VMCI_ANON_SRC_HANDLE, payload);
}

uint64_t qp_alloc_ppn(std::span<const uint8_t> dg, uint64_t i, size_t ppn_size) {
  const uint8_t* at = dg.data() + sizeof(vmci_queue_pair_alloc_msg) + i * ppn_size;
  if (ppn_size == sizeof(uint64_t)) {
    uint64_t ppn;
    std::memcpy(&ppn, at, sizeof ppn);
    return ppn;
  }
  uint32_t ppn;
  std::memcpy(&ppn, at, sizeof ppn);
  return ppn;
}

int parse_qp_alloc_message(std::span<const uint8_t> dg, QpAllocFields* out, size_t ppn_size) {
  if (ppn_size != sizeof(uint32_t) && ppn_size != sizeof(uint64_t)) return VMCI_ERROR_INVALID_ARGS;
  const uint64_t max = ppn_size == sizeof(uint64_t) ? kMaxQpAllocMessage64 : kMaxQpAllocMessage;
  if (dg.size() < sizeof(vmci_queue_pair_alloc_msg) || dg.size() > max) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  vmci_queue_pair_alloc_msg msg;
  std::memcpy(&msg, dg.data(), sizeof msg);
  if (msg.hdr.payload_size != dg.size() - sizeof(vmci_datagram)) return VMCI_ERROR_INVALID_ARGS;
  // Sizes beyond the per-pair limit are refused by the broker; here only
  // the page list must be consistent (and its arithmetic must not overflow).
  if (msg.produce_size > VMCI_MAX_GUEST_QP_MEMORY || msg.consume_size > VMCI_MAX_GUEST_QP_MEMORY ||
      msg.num_ppns != qp_page_count(msg.produce_size, msg.consume_size) ||
      dg.size() != sizeof msg + msg.num_ppns * ppn_size) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  *out = QpAllocFields{msg.handle,       msg.peer,         msg.flags,
                       msg.produce_size, msg.consume_size, msg.num_ppns};
  return VMCI_SUCCESS;
}

Bytes make_qp_detach_message(vmci_handle handle) {
  return make_datagram(kDetachHypercall, VMCI_ANON_SRC_HANDLE,
                       std::span(reinterpret_cast<const uint8_t*>(&handle), sizeof handle));
}

int parse_qp_detach_message(std::span<const uint8_t> dg, vmci_handle* out) {
  if (dg.size() != sizeof(vmci_queue_pair_detach_msg)) return VMCI_ERROR_INVALID_ARGS;
  vmci_queue_pair_detach_msg msg;
  std::memcpy(&msg, dg.data(), sizeof msg);
  if (msg.hdr.payload_size != sizeof(vmci_handle)) return VMCI_ERROR_INVALID_ARGS;
  *out = msg.handle;
  return VMCI_SUCCESS;
}

int check_qpair_alloc(bool have_qpair, bool have_handle, uint64_t produce_size,
                      uint64_t consume_size, uint32_t flags) {
  if (produce_size > VMCI_MAX_GUEST_QP_MEMORY || consume_size > VMCI_MAX_GUEST_QP_MEMORY ||
      produce_size + consume_size > VMCI_MAX_GUEST_QP_MEMORY) {
    return VMCI_ERROR_NO_RESOURCES;
  }
  if (flags & VMCI_QPFLAG_NONBLOCK) return VMCI_ERROR_INVALID_ARGS;
  if (!have_qpair || !have_handle || (produce_size == 0 && consume_size == 0) ||
      (flags & ~VMCI_QP_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  return VMCI_SUCCESS;
}

bool is_qp_alloc_hypercall(std::span<const uint8_t> dg) {
  if (dg.size() < sizeof(vmci_datagram)) return false;
  const vmci_datagram h = header_of(dg);
  return h.dst.context == VMCI_HYPERVISOR_CONTEXT_ID && h.dst.resource == VMCI_QUEUEPAIR_ALLOC;
}

}  // namespace vmci::proto
