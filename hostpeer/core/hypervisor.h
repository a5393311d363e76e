// hypervisor.h: the hypervisor core: contexts, host datagram handles,
// datagram routing, pending accounting, the queue-pair broker and events.
// No sockets, no threads: the I/O layer feeds it requests and carries out
// what it decides (it passes a pair's memory on to the endpoint).
//
// Not thread-safe: the owner serialises calls (HostPeer holds one mutex).
// Sinks are called inside those calls and must only enqueue.
//
//   Hypervisor core(limits, log);
//   auto host = core.admit({proto::Role::kHost, VMCI_INVALID_ID, 0, true}, &host_sink);
//   auto vm = core.admit({proto::Role::kGuest, VMCI_INVALID_ID, 0, false}, &vm_sink);
//   core.send(vm.peer, datagram_bytes);   // 24 + payload, or a VMCI_ERROR_*
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/doorbell_table.h"
#include "core/pending_deliveries.h"
#include "core/queue_pair_broker.h"
#include "core/request_observer.h"
#include "core/ring_channels.h"
#include "memory/guest_memory_map.h"
#include "memory/queue_pair_memory.h"
#include "memory/queue_pair_memory_reserve.h"
#include "vmci/host/limits.h"
#include "vmci/host/stats.h"
#include "vmci/introspection.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/log_rate_limit.h"

namespace spdlog {
class logger;
}

namespace vmci::host {

// One connection to hostpeer: a guest context or a host connection.
using PeerId = uint64_t;
inline constexpr PeerId kNoPeer = 0;  // never a peer's id

// Where the core hands what it delivers to a peer.
class PeerSink {
 public:
  virtual ~PeerSink() = default;
  // A datagram (or event datagram) for this peer; the peer acknowledges it
  // with Hypervisor::delivered(delivery_id) once its callback ran. Must not
  // block and must not call back into the core.
  virtual void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) = 0;
  // One of this peer's doorbells, on notify-bitmap `index`, was rung: set
  // that byte of its notify memory and wake it if it sleeps. Must not block
  // and must not call back into the core.
  virtual void ring(uint64_t index) = 0;
  // A ring-channel slot for this peer, as ringer or as the doorbell's owner
  // (frame.h's RingGrantBody); `first`: the channel is new to this peer,
  // whose page `memory` is. Must not block and must not call back into the
  // core.
  virtual void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
                     bool first) = 0;
  // A ring channel of this peer is closed (its other side went).
  virtual void close_ring_channel(uint32_t channel_id, proto::RingSide side) = 0;
  // The memory of host-created pair `handle` is now the guest's own pages
  // (a guest that supplies its memory attached): map `memory`'s extents
  // over the pair in place. Only for peers that take extents. Must not
  // block and must not call back into the core.
  virtual void queue_pair_memory(vmci_handle /*handle*/,
                                 std::shared_ptr<const QueuePairMemory> /*memory*/) {}
  // For a peer that counts the deliveries it reached (PeerHello::
  // counts_deliveries): that count, as the peer wrote it. Must not block
  // and must not call back into the core.
  virtual uint32_t deliveries_reached() const { return 0; }
};

struct PeerHello {
  proto::Role role = proto::Role::kGuest;
  vmci_id requested_cid = VMCI_INVALID_ID;  // guests only
  uint32_t priv_flags = 0;                  // guests only: 0 or RESTRICTED
  bool trusted_for_host = false;            // may this peer take the host role?
  // Does it ring through ring channels once granted? (Connections over
  // the socket do; an embedded endpoint calls the core directly.)
  bool rings_through_channels = false;
  // May ring channels involve it at all, as ringer or as owner? (Not for a
  // device that mirrors its notify bitmap into a guest kernel's page:
  // frame.h's kFeatureNoRingChannels.)
  bool allows_ring_channels = true;
  // Does it take part in datagram lanes from hosts to guests
  // (kFeatureHostLanes): a guest reading them as owner, a host writing
  // them as ringer? (Both sides must; an embedded endpoint does.)
  bool takes_host_lanes = false;
  // A guest whose queue-pair memory is its own pages (kFeatureGuestMemory).
  bool supplies_guest_memory = false;
  // Does it count the deliveries it reached (PeerSink::deliveries_reached,
  // kFeatureCountedDeliveries) instead of acknowledging each?
  bool counts_deliveries = false;
  // Can it map a pair given as extents of guest RAM files (a host peer of
  // protocol 2.1 or later, an embedded endpoint)?
  bool takes_extents = true;
  int64_t pid = 0;   // the peer's process (traces and introspection)
  int64_t uid = -1;  // its user, -1 if not known (introspection)
};

struct Admission {
  int status;  // VMCI_SUCCESS or why the peer was refused
  PeerId peer;
  vmci_id cid;
  std::string reason;  // empty on success
};

struct HandleResult {
  int status;
  vmci_handle handle;
};

// The answer to a queue-pair alloc: on success the pair's handle and the
// memory that the caller maps (a guest: its produce queue first; a host:
// the other way round, spec §6.5).
struct QueuePairReply {
  int status;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  std::shared_ptr<const QueuePairMemory> memory;
};

// Makes a new pair's memory (sizes in guest view); null with *error if it
// cannot. None given: hostpeer's QueuePairMemoryReserve.
using QueuePairMemoryFactory = std::function<std::unique_ptr<QueuePairMemory>(
    vmci_handle handle, uint64_t produce_size, uint64_t consume_size, std::string* error)>;

class Hypervisor {
 public:
  Hypervisor(Limits limits, std::shared_ptr<spdlog::logger> log,
             QueuePairMemoryFactory make_memory = {},
             RingChannelFactory make_ring_channel = RingChannelFile::create);

  // Admits a peer (spec §1.5, design decisions 2 and 6).
  Admission admit(const PeerHello& hello, PeerSink* sink);
  // The peer's connection is gone: a guest context is removed (CTX_REMOVED to
  // every host connection); a host connection's handles go; the queue pairs
  // of either are detached (QP_PEER_DETACH to the peers that remain).
  void remove(PeerId peer);

  // A datagram from the peer (spec §3.5); datagrams to context 0 are
  // hypercalls (§4). Returns the kernel API's result; a successful
  // VMCI_QUEUEPAIR_ALLOC hypercall also sets *memory (if given).
  int64_t send(PeerId peer, std::span<const uint8_t> datagram,
               std::shared_ptr<const QueuePairMemory>* memory = nullptr);
  // A guest that supplies its memory (kFeatureGuestMemory) says where its
  // RAM is (frame.h's kGuestMemory): the map replaces the one it sent
  // before (pairs made keep their memory). Takes `fds` (closed unless
  // kept). VMCI_ERROR_NO_ACCESS for a host or a guest without the feature,
  // VMCI_ERROR_INVALID_ARGS for a map that does not hold (logged).
  int set_guest_memory(PeerId peer, uint32_t flags,
                       std::span<const proto::GuestMemoryRegion> regions, std::vector<int> fds);
  // The broker calls (spec §6.5): the hypercalls of a guest, the direct
  // calls of a host connection. Sizes in the caller's own view.
  QueuePairReply qpair_alloc(PeerId peer, const QpAllocRequest& request);
  int qpair_detach(PeerId peer, vmci_handle handle);

  // Doorbells (spec §5): guests link theirs with the VMCI_DOORBELL_*
  // hypercalls; host connections call these. A host doorbell shares the
  // host's resource ids with its datagram handles (FreeBSD's one table,
  // item 35): `resource` VMCI_INVALID_ID picks a free one.
  HandleResult create_host_doorbell(PeerId peer, vmci_id resource, uint32_t priv_flags,
                                    uint64_t notify_index);
  int destroy_host_doorbell(PeerId peer, vmci_handle handle);
  // vmci_doorbell_notify from a host connection, with its caller's flags.
  int notify_doorbell(PeerId peer, vmci_handle handle, uint32_t priv_flags);
  // Host connections' datagram handles (spec §3.4, FreeBSD's table rules).
  HandleResult create_host_handle(PeerId peer, vmci_id resource, uint32_t flags,
                                  uint32_t priv_flags);
  // Destroys the caller's host datagram handle that `handle` finds by
  // Linux's lookup (a context of VMCI_INVALID_ID on either side matches any
  // context) and answers with the handle as it was stored.
  HandleResult destroy_host_handle(PeerId peer, vmci_handle handle);
  // The peer ran its callback for this delivery: it is no longer pending.
  void delivered(PeerId peer, uint32_t delivery_id);

  // Gives a guest context a new id, as after a migration, and tells the
  // guest with CTX_ID_UPDATE (spec §7.4). VMCI_ERROR_NOT_FOUND if no guest
  // has `old_cid`; VMCI_ERROR_INVALID_ARGS for a reserved or invalid new id;
  // VMCI_ERROR_ALREADY_EXISTS if it is in use.
  int update_context_id(vmci_id old_cid, vmci_id new_cid);

  Stats stats() const;
  // Makes queue-pair memory ahead for the next allocs (QueuePairMemoryReserve,
  // unless a factory was given): for a caller that nobody waits on, such as
  // a session once an alloc's result is written.
  void restock_memory();
  // Everything it holds, per connection, pair, doorbell and handle
  // (vmci/introspection.h).
  Introspection introspect() const;

  // From now on every request, delivery and peer is reported to `observer`
  // (vmci-hostpeer --trace, --capture); null: to nobody.
  void observe_with(std::shared_ptr<RequestObserver> observer);

 private:
  vmci_id cid_of(PeerId peer) const;  // VMCI_INVALID_ID for no such peer
  // The requests themselves; the public calls add the trace.
  Admission admit_untraced(const PeerHello& hello, PeerSink* sink);
  // Routes the datagram and counts it in the sender's figures.
  int64_t send_untraced(PeerId peer, std::span<const uint8_t> datagram,
               std::shared_ptr<const QueuePairMemory>* memory = nullptr);
  int64_t route_datagram(PeerId peer, std::span<const uint8_t> datagram,
                         std::shared_ptr<const QueuePairMemory>* memory);
  // `guest_pages`: the caller is a guest supplying the pair's memory.
  QueuePairReply qpair_alloc_untraced(PeerId peer, const QpAllocRequest& request,
                                      std::vector<QueueExtent>* guest_pages = nullptr);

  int qpair_detach_untraced(PeerId peer, vmci_handle handle);
  HandleResult create_host_doorbell_untraced(PeerId peer, vmci_id resource, uint32_t priv_flags,
                                    uint64_t notify_index);
  int destroy_host_doorbell_untraced(PeerId peer, vmci_handle handle);
  int notify_doorbell_untraced(PeerId peer, vmci_handle handle, uint32_t priv_flags);
  HandleResult create_host_handle_untraced(PeerId peer, vmci_id resource, uint32_t flags,
                                  uint32_t priv_flags);
  HandleResult destroy_host_handle_untraced(PeerId peer, vmci_handle handle);
  int update_context_id_untraced(vmci_id old_cid, vmci_id new_cid);
  struct Peer {
    PeerId id = 0;
    proto::Role role = proto::Role::kGuest;
    vmci_id cid = VMCI_INVALID_ID;
    uint32_t priv_flags = 0;
    PeerSink* sink = nullptr;
    uint32_t next_delivery_id = 1;
    // Settled from the peer's count before it is read (settle_pending), also
    // by stats() and introspect(): hence mutable.
    mutable PendingDeliveries pending{false};
    uint64_t deliveries_queued = 0;  // on this connection, each id once
    uint32_t handles = 0;  // host connections: datagram handles owned
    bool rings_through_channels = false;
    bool allows_ring_channels = true;
    bool takes_host_lanes = false;
    bool supplies_guest_memory = false;
    bool takes_extents = true;
    std::shared_ptr<const GuestMemoryMap> guest_memory;  // guests that supply their memory
    // What introspect() shows of it.
    int64_t pid = 0;
    int64_t uid = -1;
    int64_t since_unix_ms = 0;
    uint64_t datagrams_sent = 0;
    uint64_t bytes_sent = 0;
    uint64_t refused = 0;
    uint64_t datagrams_received = 0;
    uint64_t bytes_received = 0;
    std::map<uint32_t, uint64_t> events_received;  // by event type
  };
  struct HostHandle {
    vmci_handle handle;  // context 2, or VMCI_INVALID_ID for any-context handles
    uint32_t flags;
    uint32_t priv_flags;
    PeerId owner;
  };

  vmci_id assign_guest_cid();
  int64_t hypercall(const Peer& sender, std::span<const uint8_t> datagram,
                    std::shared_ptr<const QueuePairMemory>* memory);
  QpEndpoint endpoint_of(const Peer& peer) const;
  // Whether the pair `handle` could be attached to by `caller` as far as
  // its memory goes (a host that cannot take extents, a creator that
  // cannot take the guest's pages): VMCI_SUCCESS or why not (logged).
  int check_memory_for_attach(const Peer& caller, vmci_handle handle,
                              bool with_guest_pages);
  DoorbellOwner doorbell_owner_of(const Peer& peer) const;
  int ring_doorbell(const Peer& sender, vmci_handle handle, uint32_t caller_priv);
  // After a ring the rules allowed: a ring-channel slot for the sender's
  // next rings of `handle`, told to both sides.
  void grant_ring_channel(const Peer& sender, PeerId owner, vmci_handle handle,
                          uint32_t caller_priv);
  // After a guest's datagram to host datagram handle `handle` was routed:
  // a slot of the ring channel to the handle's owner, for the guest's next
  // datagrams to it through the channel's lane, told to both sides.
  void grant_datagram_lane(const Peer& sender, vmci_handle handle);
  // After a host's datagram from its handle `source` to `guest` was
  // routed: a slot of the ring channel to the guest, for the host's next
  // datagrams from that handle to it (any resource), if both take host
  // lanes.
  void grant_host_lane(const Peer& sender, vmci_handle source, const Peer& guest);
  // Grants `sender` a slot for `handle` owned by `owner` and tells both
  // sides, in `body` (kind, flags, lane cap set); nothing if none can be had.
  void grant_slot(const Peer& sender, PeerId owner, vmci_handle handle, proto::RingGrantBody body);
  // The doorbell was unlinked: its slots are revoked.
  int unlinked(int status, vmci_handle handle);
  // Closes the peer's ring channels, telling the sides that remain.
  void close_ring_channels(PeerId peer);
  // A free host resource id (neither a datagram handle nor a doorbell), or
  // VMCI_INVALID_ID when there is none.
  vmci_id free_host_resource();
  bool host_resource_taken(vmci_id resource) const;
  // Sends the broker's events and brings each touched pair's memory up to
  // date with its state (status page; memory freed with the pair).
  // `cause`: the peer whose call or end made the notices.
  void settle_queue_pairs(PeerId cause, const std::vector<QpNotice>& notices,
                          const std::vector<vmci_handle>& touched);
  int64_t send_from_guest(const Peer& sender, std::span<const uint8_t> datagram);
  // The VMCI_QUEUEPAIR_ALLOC hypercall of a guest that supplies its memory:
  // its page numbers, through its guest memory map, are the pair's memory.
  int64_t guest_pages_alloc(const Peer& sender, std::span<const uint8_t> datagram,
                            std::shared_ptr<const QueuePairMemory>* memory);
  int64_t send_from_host(const Peer& sender, std::span<const uint8_t> datagram);
  // Linux's vmci_route for a datagram or doorbell notify from the host (a
  // host with no guest device): VMCI_SUCCESS for the host context or a guest
  // context that exists; INVALID_ARGS for VMCI_INVALID_ID; DEVICE_NOT_FOUND
  // for the hypervisor; DST_UNREACHABLE for any other context.
  int route_from_host(vmci_id dst_context) const;
  // Delivers `sender`'s datagram to the owner of host handle `dst`,
  // checking privileges (`sender_priv`: the sending handle's or context's).
  int64_t deliver_to_host_handle(PeerId sender, vmci_handle dst, uint32_t sender_priv,
                                 std::span<const uint8_t> datagram);
  // Queues a datagram for `receiver` within its pending cap; `cause` is the
  // peer that sent it or whose call or end made it (kNoPeer: none).
  int64_t enqueue(Peer& receiver, std::vector<uint8_t> datagram, PeerId cause);
  // After a delivery to `receiver`: tells the rings of its lanes' ringers
  // that must write a barrier record before their next datagram. A guest's
  // deliveries are one queue in VMCI (its device's), so every ringer's; a
  // host's are dispatched as they come (Linux's dg_dispatch_as_host, event
  // callbacks in the caller's context), so only `cause`'s, which must not
  // overtake what it caused.
  void publish_deliveries(const Peer& receiver, PeerId cause);
  // Takes in what a counting peer says it reached (PendingDeliveries::settle).
  void settle_pending(const Peer& peer) const;
  const HostHandle* find_host_handle(vmci_id resource) const;
  Peer* find_guest(vmci_id cid);
  std::string describe(const Peer& peer) const;

  const Limits limits_;
  std::shared_ptr<spdlog::logger> log_;
  const int64_t started_unix_ms_;
  // What a peer may repeat in a loop is logged at most a burst at a time,
  // per PeerId and reason (LoggedRefusal, hypervisor.cc), then counted.
  // Mutable: settle_pending may report from stats() and introspect().
  mutable proto::LogRateLimit request_log_;
  std::shared_ptr<RequestObserver> observer_;  // null: nobody watches
  std::map<PeerId, Peer> peers_;
  std::map<vmci_id, PeerId> guests_;            // guest cid -> peer
  std::map<vmci_id, HostHandle> host_handles_;  // resource id -> handle
  QueuePairMemoryReserve memory_reserve_;
  QueuePairMemoryFactory make_memory_;
  QueuePairBroker broker_;
  DoorbellTable doorbells_;
  RingChannels ring_channels_;
  std::map<uint64_t, std::shared_ptr<QueuePairMemory>> qp_memory_;  // by handle key
  std::map<uint64_t, PeerId> qp_creator_;                             // by handle key
  PeerId next_peer_id_ = 1;
  vmci_id next_guest_cid_ = VMCI_RESERVED_CID_LIMIT;
  vmci_id next_host_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
  uint64_t datagrams_routed_ = 0;
  uint64_t events_sent_ = 0;
  uint64_t doorbells_rung_ = 0;
  uint64_t connections_admitted_ = 0;
  std::map<int64_t, uint64_t> refusals_by_status_;  // datagrams and hypercalls refused
};

}  // namespace vmci::host
