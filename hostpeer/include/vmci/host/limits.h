// limits.h: what hostpeer lets one context or host connection hold.
// The names are those of the scenario format's `hostpeer.limits`.
#pragma once

#include <cstdint>

#include "vmci/vmci_call_defs.h"

namespace vmci::host {

struct Limits {
  // Datagram bytes accepted for one receiver (a guest context or a host
  // connection) and not yet through its callback. A datagram is refused with
  // VMCI_ERROR_NO_RESOURCES when pending + its size would reach this; events
  // from the hypervisor get 1024 * 48 bytes more head-room (spec §3.5).
  uint64_t max_pending_datagram_bytes = VMCI_MAX_DATAGRAM_QUEUE_SIZE;
  // Datagram handles one host connection may hold.
  uint32_t max_host_datagram_handles = 4096;
  // Queue pairs (produce + consume bytes, and how many) of which one context
  // is an endpoint; beyond them an alloc is VMCI_ERROR_NO_RESOURCES. A
  // single pair is never over 128 MiB (VMCI_MAX_GUEST_QP_MEMORY). The host
  // context's connections share context 2's limits.
  uint64_t max_qp_memory_per_context = 256ull * 1024 * 1024;
  uint32_t max_queue_pairs_per_context = 16384;
  // Doorbells one guest context (or context 2's connections together) may
  // hold; beyond them a create is VMCI_ERROR_NO_RESOURCES.
  uint32_t max_doorbells_per_context = 4096;
};

}  // namespace vmci::host
