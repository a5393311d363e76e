// queue_pair_broker.h: the queue-pair broker of spec §6.5-6.6: who may
// create, attach to and detach from which queue pair, and which events that
// causes. No memory and no I/O: the caller maps the queues and sends the
// notices. Not thread-safe: the hypervisor core serialises calls.
//
// Sizes are kept from the guest's point of view, as VMCI's broker keeps
// them; a host endpoint passes its own view and the broker swaps it.
//
//   QueuePairBroker broker(limits);
//   std::vector<QpNotice> notices;
//   auto created = broker.alloc(guest, {handle, VMCI_INVALID_ID, 0, 0, 4096, 4096}, &notices);
//   auto attached = broker.alloc(host, {handle, VMCI_INVALID_ID, 0, 0, 4096, 4096}, &notices);
//   // notices: QP_PEER_ATTACH for the guest, peer_id 2
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "vmci/host/limits.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::host {

// One endpoint's identity, as the broker needs it.
struct QpEndpoint {
  uint64_t owner;             // the connection (PeerId) that owns the endpoint
  vmci_id cid;                // its context: a guest's id, or 2 for host connections
  uint32_t context_priv = 0;  // the context's privileges (RESTRICTED guests)
  bool is_host() const { return cid == VMCI_HOST_CONTEXT_ID; }
};

struct QpAllocRequest {
  vmci_handle handle;  // a host creator may leave it invalid: the broker picks one
  vmci_id peer = VMCI_INVALID_ID;
  uint32_t flags = 0;
  uint32_t priv_flags = 0;
  uint64_t produce_size = 0;  // the caller's own view
  uint64_t consume_size = 0;
};

// An event to send: `event` to the endpoint owned by `to`, in context `to_cid`.
struct QpNotice {
  uint64_t to;
  vmci_id to_cid;
  vmci_event_type event;
  vmci_handle handle;
  vmci_id peer_id;
};

struct QpAllocResult {
  int status;
  vmci_handle handle;
  bool created;  // true: the caller created the pair; false: it attached
};

enum class QpState {
  kCreatedNoMem = 1,
  kCreatedMem = 2,
  kAttachedNoMem = 3,
  kAttachedMem = 4,
  kShutdownNoMem = 5,
  kShutdownMem = 6,
};

class QueuePairBroker {
 public:
  explicit QueuePairBroker(const Limits& limits) : limits_(limits) {}

  // Create or attach (spec §6.5, every check in its order).
  QpAllocResult alloc(const QpEndpoint& caller, const QpAllocRequest& request,
                      std::vector<QpNotice>* notices);
  // VMCI_ERROR_NOT_FOUND if the caller is not an endpoint of `handle`.
  int detach(const QpEndpoint& caller, vmci_handle handle, std::vector<QpNotice>* notices);
  // Detaches every pair the connection is an endpoint of (it went away);
  // returns their handles.
  std::vector<vmci_handle> detach_all(const QpEndpoint& caller, std::vector<QpNotice>* notices);

  // The connection's context is now `new_cid` (spec §1.5's context id
  // update): its endpoints are that context's from now on, for events,
  // limits and who may attach. The pairs keep their handles.
  void rename_context(uint64_t owner, vmci_id new_cid);

  size_t count() const { return pairs_.size(); }
  // Queue memory (produce + consume) of the pairs a context is an endpoint of.
  uint64_t memory_of(vmci_id cid) const;
  // The state of a pair, for tests and stats; 0 if it does not exist.
  int state_of(vmci_handle handle) const;

  struct Entry {
    vmci_handle handle;
    uint32_t flags;
    QpState state;
    uint64_t produce_size;  // guest view, as kept
    uint64_t consume_size;
    QpEndpoint creator;
    bool has_attacher;
    QpEndpoint attacher;
  };
  std::vector<Entry> list() const;

 private:
  struct Pair {
    vmci_handle handle;
    vmci_id peer;
    uint32_t flags;
    uint64_t produce_size;  // guest view
    uint64_t consume_size;
    QpState state;
    QpEndpoint creator;
    QpEndpoint attacher;
    bool has_attacher = false;
    bool creator_attached = true;
    bool require_trusted_attach;
    bool created_by_trusted;
  };

  QpAllocResult create(const QpEndpoint& caller, const QpAllocRequest& request);
  QpAllocResult attach(Pair& pair, const QpEndpoint& caller, const QpAllocRequest& request,
                       std::vector<QpNotice>* notices);
  bool is_endpoint(const Pair& pair, const QpEndpoint& caller) const;
  uint32_t count_of(vmci_id cid) const;

  const Limits limits_;
  std::map<uint64_t, Pair> pairs_;  // by handle key
  vmci_id next_host_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
};

}  // namespace vmci::host
