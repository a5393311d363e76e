// guest_queue_pairs.h: a guest context's queue-pair endpoints (spec §6.4):
// the table of pairs it holds, local pairs that never reach hostpeer, and
// the alloc and detach hypercalls for the others.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "connection.h"
#include "vmci/proto/datagram.h"
#include "vmci/queue_pair.h"

namespace vmci::guest::internal {

class GuestQueuePairs {
 public:
  // Sends a hypercall datagram and returns hostpeer's reply; runs
  // `while_waiting` (if any) once it is sent, before it waits.
  using Hypercall = std::function<Connection::Reply(const proto::Bytes& datagram,
                                                    const std::function<void()>& while_waiting)>;
  // Delivers a local QP_PEER_ATTACH / QP_PEER_DETACH to this context's
  // subscribers (not on the caller's thread).
  using LocalEvent = std::function<void(vmci_event_type event, vmci_handle handle)>;

  // Pairs a guest may hold, local ones included (hostpeer bounds the others
  // itself); beyond them a new local pair is VMCI_ERROR_NO_RESOURCES.
  static constexpr size_t kMaxPairs = 16384;

  GuestQueuePairs(Hypercall hypercall, LocalEvent local_event);

  // vmci_qpair_alloc for a guest endpoint (spec §6.2, §6.4).
  int alloc(vmci_id own_cid, std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
            uint64_t produce_size, uint64_t consume_size, vmci_id peer, uint32_t flags,
            uint32_t priv_flags);
  // vmci_qpair_detach: *qpair goes whatever the result; a failed detach
  // hypercall keeps the entry and returns the error. A pair in hostpeer's
  // memory is unmapped here while hostpeer answers, whatever the result:
  // with *qpair gone nothing here can reach it, and the memory lives on
  // for the peer. (A local pair's memory goes with its last endpoint.)
  int detach(std::unique_ptr<QueuePair>* qpair);

 private:
  struct Entry {
    vmci_handle handle;
    uint32_t flags;
    uint64_t produce_size;  // the creator's view
    uint64_t consume_size;
    bool local;
    int ref_count;
    std::shared_ptr<const void> memory;
    proto::QueuePairView creator_view;  // local pairs
  };

  int create_local(vmci_handle handle, uint64_t produce_size, uint64_t consume_size,
                   uint32_t flags, std::unique_ptr<QueuePair>* qpair);
  int create_remote(vmci_handle handle, uint64_t produce_size, uint64_t consume_size,
                    vmci_id peer, uint32_t flags, std::unique_ptr<QueuePair>* qpair);
  int attach_local(Entry& entry, uint64_t produce_size, uint64_t consume_size, uint32_t flags,
                   std::unique_ptr<QueuePair>* qpair);
  vmci_id next_resource();

  Hypercall hypercall_;
  LocalEvent local_event_;
  std::mutex mutex_;  // the guest's queue-pair list lock; held across hypercalls
  std::map<uint64_t, Entry> entries_;  // by handle key
  vmci_id next_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
};

}  // namespace vmci::guest::internal
