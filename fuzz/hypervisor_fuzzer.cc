// hypervisor_fuzzer: the hypervisor core (hostpeer/core/hypervisor.h) driven
// by a request sequence from up to five peers, with the real queue-pair
// memory and ring-channel factories. After every request the fuzzer checks
// what the core told the peers and what it holds against a model it keeps
// itself; after the last one it removes every peer and checks that the core
// holds nothing.
//
// Peer slots: 0 and 1 are guests, 2 a RESTRICTED guest, 3 and 4 host
// connections. A slot byte names one as (byte % 5).
//
// Input: one byte of mode (bit 0: small Limits, so that limits are reached
// quickly), then requests until the input ends: a one-byte opcode
// (byte % 16) and its arguments, fixed-size little-endian, missing bytes
// read as zero. H is a handle selector byte (handle_of below), C a context
// id byte (cid_of below), R a resource byte (resource_of), Z a size (u16,
// size_of).
//
//   op  request                 arguments
//    0  admit                   slot:u8 cid:C bits:u8 (bit 0: rings through channels,
//                               bit 1: untrusted host / bogus guest privileges,
//                               bit 2: counts the deliveries it reached)
//    1  remove                  slot:u8
//    2  send raw bytes          slot:u8 len:u16, then len bytes of the input
//    3  send a datagram         slot:u8 dst:H src:H payload:u16 (bytes, up to 1 over the max)
//    4  hypercall               slot:u8 kind:u8, then by kind % 8:
//                                 0 GET_CONTEXT_ID   -
//                                 1 RESOURCES_QUERY  n:u8, then n rids (u8 each)
//                                 2 QUEUEPAIR_ALLOC  handle:H peer:C flags:u8 produce:Z
//                                                    consume:Z bits:u8 (bit 0: truncate)
//                                 3 QUEUEPAIR_DETACH handle:H
//                                 4 DOORBELL_LINK    handle:H index:u16
//                                 5 DOORBELL_UNLINK  handle:H
//                                 6 DOORBELL_NOTIFY  handle:H
//                                 7 any other rid    rid:u8
//    5  create host handle      slot:u8 resource:R flags:u8 priv:u8
//    6  destroy host handle     slot:u8 handle:H
//    7  delivered               slot:u8 which:u8, then if which >= 224 or nothing is
//                               pending id:u32 (often bogus), else none: the
//                               (which % pending)th pending delivery. A slot
//                               that counts reports a count instead: which %
//                               (pending + 1) more, or the u32 (often a claim
//                               of deliveries it was never given)
//    8  acknowledge every delivery of a slot   slot:u8
//    9  qpair_alloc (direct)    slot:u8 handle:H peer:C flags:u8 priv:u8 produce:Z consume:Z
//   10  qpair_detach (direct)   slot:u8 handle:H
//   11  create host doorbell    slot:u8 resource:R priv:u8 index:u16
//   12  destroy host doorbell   slot:u8 handle:H
//   13  notify doorbell (host)  slot:u8 handle:H priv:u8
//   14  update context id       old:u8 (% 4 < 3: that guest slot's id, else old / 4)
//                               new:C
//   15  nothing                 pad:u8
//
// The core has no event subscriptions (VMCI_EVENT_SUBSCRIBE is obsolete on
// the wire, spec §4.6): hypercall kind 7 covers rids 8 and 9 among others.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/hypervisor.h"
#include "fuzz_input.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/queue.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/proto/ring_channel.h"

namespace {

using vmci::fuzz::check;
using vmci::fuzz::Input;

using namespace vmci;
using namespace vmci::host;

// What the core may answer: success (or a count, an id) or a VMCI_ERROR_*
// of vmci_defs.h.
void check_result(int64_t result) {
  check(result >= VMCI_SUCCESS ||
        (result <= VMCI_ERROR_INVALID_RESOURCE && result >= VMCI_ERROR_WOULD_BLOCK));
}

// As the core's: events from the hypervisor may go this far over the cap.
constexpr uint64_t kEventHeadroom = 1024 * (sizeof(vmci_datagram) + sizeof(vmci_event_data_max));

constexpr int kSlots = 5;
constexpr int kGuestSlots = 3;
constexpr int kRestrictedSlot = 2;
bool is_host_slot(int slot) { return slot >= kGuestSlots; }

// One thing the core told a peer, checked after the request returns (the
// check needs the state after it: a context id update tells the guest its
// new id).
struct Told {
  enum Kind { kDeliver, kGrant, kClose } kind;
  int slot;
  uint32_t id = 0;  // delivery id, or channel id
  uint64_t size = 0;
  vmci_datagram header{};
  uint32_t event = 0;  // event datagrams: the event type
  proto::RingGrantBody grant{};
  bool first = false;
  uint8_t side = 0;
};

struct Fuzz;

class Sink : public PeerSink {
 public:
  Sink(Fuzz* fuzz, int slot) : fuzz_(fuzz), slot_(slot) {}
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) override;
  void ring(uint64_t index) override;
  void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory, bool first) override;
  void close_ring_channel(uint32_t channel_id, proto::RingSide side) override;
  uint32_t deliveries_reached() const override;

 private:
  Fuzz* const fuzz_;
  const int slot_;
};

struct Slot {
  bool live = false;
  PeerId peer = 0;
  vmci_id cid = VMCI_INVALID_ID;  // the current one, or the last one
  bool rings_through_channels = false;
  std::map<uint32_t, uint64_t> pending;  // delivery id -> bytes
  uint64_t pending_bytes = 0;
  // A slot that counts the deliveries it reached: the count it reports,
  // the count the core settled, and its pending ids in delivery order.
  bool counts = false;
  uint32_t reached = 0;
  uint32_t settled = 0;
  std::deque<uint32_t> order;
};

// A queue pair as the model sees it.
struct ModelPair {
  std::set<int> endpoints;  // slots
  uint64_t queue_bytes;     // produce + consume
  uint64_t guest_produce;   // guest view
  uint64_t guest_consume;
  std::weak_ptr<const QueuePairMemory> memory;
};

struct ModelChannel {
  int owner = -1;
  int ringer = -1;
  bool owner_closed = false;
  bool ringer_closed = false;
  std::set<uint32_t> slots;
};

Limits limits_for(uint8_t mode) {
  Limits limits;
  if (mode & 1) {
    limits.max_pending_datagram_bytes = 4096;
    limits.max_host_datagram_handles = 3;
    limits.max_qp_memory_per_context = 64 * 1024;
    limits.max_queue_pairs_per_context = 2;
    limits.max_doorbells_per_context = 2;
  }
  return limits;
}

std::shared_ptr<spdlog::logger> null_logger() {
  static auto log =
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  return log;
}

struct Fuzz {
  explicit Fuzz(Limits l) : limits(l), core(l, null_logger()) {
    for (int i = 0; i < kSlots; ++i) {
      sinks.push_back(std::make_unique<Sink>(this, i));
      slots[i].cid = is_host_slot(i) ? VMCI_HOST_CONTEXT_ID : VMCI_RESERVED_CID_LIMIT + i;
    }
  }

  const Limits limits;
  Hypervisor core;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::array<Slot, kSlots> slots;
  std::vector<Told> told;               // during one request
  std::vector<vmci_handle> known;       // handles seen, for the selectors
  std::map<vmci_id, int> host_handles;  // resource -> owner slot
  std::map<uint64_t, int> doorbells;    // handle key -> owner slot
  std::map<uint64_t, ModelPair> pairs;  // handle key
  std::map<uint32_t, ModelChannel> channels;
  std::vector<std::weak_ptr<proto::RingChannel>> channel_memory;
  std::vector<std::weak_ptr<const QueuePairMemory>> pair_memory;
  uint64_t deliveries = 0;
  uint64_t events = 0;
  uint64_t rings = 0;

  void remember(vmci_handle h) {
    if (proto::is_invalid(h)) return;
    if (known.size() >= 32) known.erase(known.begin());
    known.push_back(h);
  }

  // Handle selector: known handles, guest- and host-context handles, and
  // the odd ones.
  vmci_handle handle_of(uint8_t b) const {
    const uint32_t hi = b >> 3;
    switch (b & 7) {
      case 0:
      case 1:
        if (known.empty()) return VMCI_INVALID_HANDLE;
        return known[hi % known.size()];
      case 2:
        return VMCI_MAKE_HANDLE(slots[hi % kGuestSlots].cid, 1024 + (hi >> 2));
      case 3:
        return VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 1024 + (hi & 7));
      case 4:
        return VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, hi);
      case 5:
        return VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 1024 + (hi & 7));
      case 6:
        return VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, hi);
      default:
        switch (hi & 3) {
          case 0:
            return VMCI_INVALID_HANDLE;
          case 1:
            return VMCI_MAKE_HANDLE(slots[(hi >> 2) % kGuestSlots].cid, VMCI_INVALID_ID);
          case 2:
            return VMCI_MAKE_HANDLE(VMCI_WELL_KNOWN_CONTEXT_ID, hi >> 2);
          default:
            return VMCI_MAKE_HANDLE(hi >> 2, 1024);
        }
    }
  }

  // Context id byte: 0 none (assigned), 253 the hypervisor, 255 the
  // largest, else itself (1 and 2 reserved, 16 and 17 the first assigned).
  static vmci_id cid_of(uint8_t c) {
    if (c == 0) return VMCI_INVALID_ID;
    if (c == 253) return VMCI_HYPERVISOR_CONTEXT_ID;
    if (c == 255) return VMCI_INVALID_ID - 1;
    return c;
  }

  // Resource byte: 0 any (the core picks), 1..127 dynamic ids from 1024,
  // 128..255 the reserved ids 0..127.
  static vmci_id resource_of(uint8_t r) {
    if (r == 0) return VMCI_INVALID_ID;
    if (r < 128) return VMCI_RESERVED_RESOURCE_ID_MAX + r;
    return r - 128;
  }

  // Size: mostly small, sometimes pages, the 128 MiB edge or an overflow.
  static uint64_t size_of(uint16_t v) {
    const uint64_t low = v & 0x1fff;
    switch (v >> 13) {
      case 4:
        return low * 4096;
      case 5:
        return 0;
      case 6:
        return VMCI_MAX_GUEST_QP_MEMORY - low;
      case 7:
        return ~uint64_t{0} - low;
      default:
        return low;
    }
  }

  int live_slot_with_cid(vmci_id cid) const {
    for (int i = 0; i < kSlots; ++i) {
      if (slots[i].live && slots[i].cid == cid) return i;
    }
    return -1;
  }

  // --- Checks after every request ---------------------------------------

  void settle() {
    for (const Told& t : told) {
      switch (t.kind) {
        case Told::kDeliver:
          settle_delivery(t);
          break;
        case Told::kGrant:
          settle_grant(t);
          break;
        case Told::kClose:
          settle_close(t);
          break;
      }
    }
    told.clear();
    // A channel with a side gone must have been closed on the other one.
    std::erase_if(channels, [&](const auto& entry) {
      const ModelChannel& c = entry.second;
      const bool owner_gone = c.owner_closed || !slots[c.owner].live;
      const bool ringer_gone = c.ringer_closed || !slots[c.ringer].live;
      check(owner_gone == ringer_gone);
      return owner_gone;
    });
    for (auto it = pairs.begin(); it != pairs.end();) {
      if (it->second.endpoints.empty()) {
        it = pairs.erase(it);
      } else {
        ++it;
      }
    }
    // The memory of a pair that is gone is freed (nobody here holds it).
    std::erase_if(pair_memory, [&](const auto& weak) {
      if (!weak.expired()) {
        auto memory = weak.lock();
        check(memory && pairs.count(proto::handle_key(memory->handle())));
      }
      return weak.expired();
    });
    check_stats();
  }

  void settle_delivery(const Told& t) {
    Slot& s = slots[t.slot];
    check(s.live);
    const vmci_datagram& h = t.header;
    const bool from_hypervisor =
        h.src.context == VMCI_HYPERVISOR_CONTEXT_ID && h.src.resource == VMCI_CONTEXT_RESOURCE_ID;
    if (is_host_slot(t.slot)) {
      check(h.dst.context == VMCI_HOST_CONTEXT_ID);
    } else {
      check(h.dst.context == s.cid);
    }
    if (from_hypervisor) {
      check(proto::is_event_datagram(h));
      ++events;
    } else if (is_host_slot(t.slot)) {
      // To one of its own datagram handles.
      auto handle = host_handles.find(h.dst.resource);
      check(handle != host_handles.end() && handle->second == t.slot);
    } else {
      // From a host handle, or from itself.
      check(h.src.context == s.cid ||
            (h.src.context == VMCI_HOST_CONTEXT_ID && host_handles.count(h.src.resource)));
    }
    check(!s.pending.count(t.id) && t.id != 0);
    s.pending.emplace(t.id, t.size);
    s.pending_bytes += t.size;
    if (s.counts) s.order.push_back(t.id);
    check(s.pending_bytes <
          limits.max_pending_datagram_bytes + (from_hypervisor ? kEventHeadroom : 0));
    ++deliveries;
  }

  void settle_grant(const Told& t) {
    const proto::RingGrantBody& g = t.grant;
    const Slot& s = slots[t.slot];
    check(s.live);
    check(g.channel_id != 0 && g.slot < proto::kRingChannelSlots);
    check(g.kind == static_cast<uint8_t>(proto::SlotKind::kDoorbell) ||
          g.kind == static_cast<uint8_t>(proto::SlotKind::kDatagram));
    // The ringer names a peer that exists.
    const int ringer = g.ringer_cid == VMCI_HOST_CONTEXT_ID ? -1 : live_slot_with_cid(g.ringer_cid);
    if (g.ringer_cid == VMCI_HOST_CONTEXT_ID) {
      check(slots[3].live || slots[4].live);
    } else {
      check(ringer >= 0);
    }
    if (g.side == static_cast<uint8_t>(proto::RingSide::kOwner)) {
      // The handle is this peer's.
      if (g.kind == static_cast<uint8_t>(proto::SlotKind::kDoorbell)) {
        auto d = doorbells.find(proto::handle_key(g.handle));
        check(d != doorbells.end() && d->second == t.slot);
      } else {
        auto h = host_handles.find(g.handle.resource);
        check(h != host_handles.end() && h->second == t.slot);
        check(g.lane_cap > 0);
      }
      auto it = channels.find(g.channel_id);
      if (it == channels.end()) {
        check(t.first);
        channels[g.channel_id].owner = t.slot;
      } else {
        check(!t.first && it->second.owner == t.slot);
      }
      channels[g.channel_id].slots.insert(g.slot);
    } else {
      check(g.side == static_cast<uint8_t>(proto::RingSide::kRinger));
      check(g.ringer_cid == s.cid && s.rings_through_channels);
      auto it = channels.find(g.channel_id);
      check(it != channels.end());  // the owner hears first
      ModelChannel& c = it->second;
      check(c.owner != t.slot);
      if (c.ringer < 0) {
        check(t.first);
        c.ringer = t.slot;
      } else {
        check(!t.first && c.ringer == t.slot);
      }
    }
  }

  void settle_close(const Told& t) {
    auto it = channels.find(t.id);
    check(it != channels.end());
    ModelChannel& c = it->second;
    if (t.side == static_cast<uint8_t>(proto::RingSide::kOwner)) {
      check(c.owner == t.slot && !c.owner_closed);
      c.owner_closed = true;
    } else {
      check(t.side == static_cast<uint8_t>(proto::RingSide::kRinger));
      check(c.ringer == t.slot && !c.ringer_closed);
      c.ringer_closed = true;
    }
  }

  void check_stats() const {
    const Stats st = core.stats();
    uint64_t guests = 0, hosts = 0, pending = 0, pending_bytes = 0;
    for (int i = 0; i < kSlots; ++i) {
      if (!slots[i].live) continue;
      ++(is_host_slot(i) ? hosts : guests);
      pending += slots[i].pending.size();
      pending_bytes += slots[i].pending_bytes;
    }
    check(st.guest_contexts == guests && st.host_connections == hosts);
    check(st.pending_datagrams == pending && st.pending_datagram_bytes == pending_bytes);
    check(st.datagrams_routed == deliveries && st.events_sent == events);
    check(st.doorbells_rung == rings);

    check(st.host_datagram_handles == host_handles.size());
    std::array<uint64_t, kSlots> handles{}, bells{};
    for (const auto& entry : host_handles) ++handles[entry.second];
    for (const auto& entry : doorbells) ++bells[entry.second];
    check(st.doorbells == doorbells.size());
    for (int i = 0; i < kSlots; ++i) {
      check(handles[i] <= limits.max_host_datagram_handles);
      check(bells[i] <= limits.max_doorbells_per_context);
    }

    // Queue pairs: the host connections share context 2's limits.
    check(st.queue_pairs == pairs.size());
    uint64_t pair_bytes = 0;
    std::array<uint64_t, kGuestSlots + 1> count{}, memory{};
    for (const auto& entry : pairs) {
      const ModelPair& p = entry.second;
      auto m = p.memory.lock();
      check(m != nullptr);
      pair_bytes += m->size();
      bool host_counted = false;
      for (int slot : p.endpoints) {
        const int ctx = is_host_slot(slot) ? kGuestSlots : slot;
        if (ctx == kGuestSlots && host_counted) continue;
        host_counted |= ctx == kGuestSlots;
        ++count[ctx];
        memory[ctx] += p.queue_bytes;
      }
    }
    check(st.queue_pair_bytes == pair_bytes);
    for (int i = 0; i <= kGuestSlots; ++i) {
      check(count[i] <= limits.max_queue_pairs_per_context);
      check(memory[i] <= limits.max_qp_memory_per_context);
    }

    check(st.ring_channels == channels.size());
    uint64_t granted = 0;
    for (const auto& entry : channels) granted += entry.second.slots.size();
    check(st.ring_grants <= granted);
    check(st.ring_grants <= st.ring_channels * proto::kRingChannelSlots);
  }

  // The memory of a pair: its layout and its queue headers as the
  // hypervisor wrote them.
  void check_pair_memory(const QueuePairMemory& m, const ModelPair& p) const {
    const proto::QueuePairLayout layout =
        proto::queue_pair_layout(p.guest_produce, p.guest_consume);
    check(layout.total == m.size());
    void* base = ::mmap(nullptr, m.size(), PROT_READ, MAP_SHARED, m.fd(), 0);
    check(base != MAP_FAILED);
    const auto* bytes = static_cast<const uint8_t*>(base);
    auto in_bounds = [](uint64_t index, uint64_t size) {
      return size == 0 ? index == 0 : index < size;
    };
    vmci_queue_header produce, consume;
    check(layout.produce_header + sizeof produce <= m.size());
    check(layout.consume_header + sizeof consume <= m.size());
    std::memcpy(&produce, bytes + layout.produce_header, sizeof produce);
    std::memcpy(&consume, bytes + layout.consume_header, sizeof consume);
    check(proto::same_handle(produce.handle, m.handle()));
    check(proto::same_handle(consume.handle, m.handle()));
    check(in_bounds(produce.producer_tail, p.guest_produce));
    check(in_bounds(produce.consumer_head, p.guest_consume));
    check(in_bounds(consume.producer_tail, p.guest_consume));
    check(in_bounds(consume.consumer_head, p.guest_produce));
    ::munmap(base, m.size());
  }

  // --- Model updates after requests that succeeded ----------------------

  void allocated(int slot, vmci_handle handle, uint64_t produce, uint64_t consume,
                 const std::shared_ptr<const QueuePairMemory>& memory) {
    check(memory != nullptr && !proto::is_invalid(handle));
    check(proto::same_handle(memory->handle(), handle));
    const uint64_t key = proto::handle_key(handle);
    auto it = pairs.find(key);
    if (it == pairs.end()) {
      // Created: the sizes in the guest's view.
      const bool host = is_host_slot(slot);
      ModelPair p{
          {}, produce + consume, host ? consume : produce, host ? produce : consume, memory};
      it = pairs.emplace(key, std::move(p)).first;
      pair_memory.push_back(memory);
    } else {
      check(it->second.memory.lock() == memory);
      check(it->second.queue_bytes == produce + consume);
      check(it->second.endpoints.size() == 1);
    }
    check(it->second.endpoints.insert(slot).second);
    check_pair_memory(*memory, it->second);
    remember(handle);
  }

  void detached(int slot, vmci_handle handle) {
    auto it = pairs.find(proto::handle_key(handle));
    check(it != pairs.end() && it->second.endpoints.erase(slot) == 1);
  }

  void forget_slot(int slot) {
    std::erase_if(host_handles, [&](const auto& e) { return e.second == slot; });
    std::erase_if(doorbells, [&](const auto& e) { return e.second == slot; });
    for (auto& entry : pairs) entry.second.endpoints.erase(slot);
    slots[slot].pending.clear();
    slots[slot].pending_bytes = 0;
    slots[slot].order.clear();
  }

  // A counting slot reports `reached`: the core settles it (stats() looks),
  // and so does the model, by PendingDeliveries' rule: oldest first, all of
  // them for a count beyond what is pending.
  void report_reached(Slot& s, uint32_t reached) {
    s.reached = reached;
    core.stats();
    const uint32_t fresh = reached - s.settled;
    s.settled = reached;
    const size_t retire = fresh <= s.order.size() ? fresh : s.order.size();
    for (size_t i = 0; i < retire; ++i) {
      auto it = s.pending.find(s.order.front());
      s.pending_bytes -= it->second;
      s.pending.erase(it);
      s.order.pop_front();
    }
  }

  // --- Requests ----------------------------------------------------------

  void admit(int slot, uint8_t cid_byte, uint8_t bits) {
    Slot& s = slots[slot];
    if (s.live) return;
    PeerHello hello;
    hello.rings_through_channels = bits & 1;
    hello.counts_deliveries = (bits & 4) != 0;
    s.counts = hello.counts_deliveries;
    s.reached = 0;
    s.settled = 0;
    if (is_host_slot(slot)) {
      hello.role = proto::Role::kHost;
      hello.trusted_for_host = !(bits & 2);
    } else {
      hello.role = proto::Role::kGuest;
      hello.requested_cid = cid_of(cid_byte);
      hello.priv_flags = slot == kRestrictedSlot ? VMCI_PRIVILEGE_FLAG_RESTRICTED : 0;
      if (bits & 2) hello.priv_flags = VMCI_PRIVILEGE_FLAG_TRUSTED;
    }
    s.live = true;  // the sink may be called from now on
    const Admission a = core.admit(hello, sinks[slot].get());
    check_result(a.status);
    if (a.status != VMCI_SUCCESS) {
      check(!a.reason.empty());
      s.live = false;
      return;
    }
    check(a.reason.empty());
    if (is_host_slot(slot)) {
      check(a.cid == VMCI_HOST_CONTEXT_ID);
    } else {
      check(VMCI_CONTEXT_IS_VM(a.cid));
      check(hello.requested_cid == VMCI_INVALID_ID || a.cid == hello.requested_cid);
      for (int i = 0; i < kSlots; ++i) {  // no two guests share an id
        check(i == slot || !slots[i].live || slots[i].cid != a.cid);
      }
    }
    for (int i = 0; i < kSlots; ++i) check(!slots[i].live || slots[i].peer != a.peer || i == slot);
    s.peer = a.peer;
    s.cid = a.cid;
    s.rings_through_channels = hello.rings_through_channels;
  }

  void remove(int slot) {
    Slot& s = slots[slot];
    if (!s.live) {
      core.remove(s.peer);  // an old peer id (or 0): nothing happens
      return;
    }
    s.live = false;  // the core must not tell it anything more
    core.remove(s.peer);
    forget_slot(slot);
  }

  // A datagram (or hypercall) from a slot. `dg` is what is sent.
  void send(int slot, const std::vector<uint8_t>& dg) {
    const Slot& s = slots[slot];
    std::shared_ptr<const QueuePairMemory> memory;
    const uint64_t before = deliveries + count_told(Told::kDeliver);
    const int64_t r = core.send(s.peer, dg, &memory);
    check_result(r);
    if (!s.live) {
      check(r == VMCI_ERROR_UNAVAILABLE);
      return;
    }
    const bool guest = !is_host_slot(slot);
    if (guest && proto::is_qp_alloc_hypercall(dg)) {
      proto::QpAllocFields f;
      if (proto::parse_qp_alloc_message(dg, &f) != VMCI_SUCCESS) {
        check(r == VMCI_ERROR_INVALID_ARGS);
      } else if (r >= VMCI_SUCCESS) {
        allocated(slot, f.handle, f.produce_size, f.consume_size, memory);
      }
      return;
    }
    check(memory == nullptr);
    if (proto::check_datagram(dg) != VMCI_SUCCESS) {
      check(r == VMCI_ERROR_INVALID_ARGS);
      return;
    }
    const vmci_datagram h = proto::header_of(dg);
    if (guest && h.dst.context == VMCI_HYPERVISOR_CONTEXT_ID) {
      hypercall_done(slot, dg, h.dst.resource, r);
      return;
    }
    if (r >= VMCI_SUCCESS) {
      // Routed: one delivery of the whole datagram.
      check(static_cast<uint64_t>(r) == dg.size());
      check(deliveries + count_told(Told::kDeliver) == before + 1);
    }
  }

  uint64_t count_told(Told::Kind kind) const {
    return std::count_if(told.begin(), told.end(), [&](const Told& t) { return t.kind == kind; });
  }

  void hypercall_done(int slot, const std::vector<uint8_t>& dg, uint32_t rid, int64_t r) {
    vmci_handle handle;
    uint64_t index;
    switch (rid) {
      case VMCI_GET_CONTEXT_ID:
        check(r == slots[slot].cid);
        break;
      case VMCI_DOORBELL_LINK:
        if (r >= VMCI_SUCCESS) {
          check(proto::parse_doorbell_link_message(dg, &handle, &index) == VMCI_SUCCESS);
          check(handle.context == slots[slot].cid && index < kNotifyIndexCount);
          check(doorbells.emplace(proto::handle_key(handle), slot).second);
          remember(handle);
        }
        break;
      case VMCI_DOORBELL_UNLINK:
        if (r >= VMCI_SUCCESS) {
          check(proto::parse_doorbell_message(dg, &handle) == VMCI_SUCCESS);
          auto it = doorbells.find(proto::handle_key(handle));
          check(it != doorbells.end() && it->second == slot);
          doorbells.erase(it);
        }
        break;
      case VMCI_QUEUEPAIR_DETACH:
        if (r >= VMCI_SUCCESS) {
          check(proto::parse_qp_detach_message(dg, &handle) == VMCI_SUCCESS);
          detached(slot, handle);
        }
        break;
      default:
        break;
    }
  }

  void run(Input& in) {
    const int op = in.take<uint8_t>() % 16;
    const uint8_t arg = in.take<uint8_t>();
    const int slot = arg % kSlots;
    Slot& s = slots[slot];
    switch (op) {
      case 0: {
        const uint8_t cid = in.take<uint8_t>();
        admit(slot, cid, in.take<uint8_t>());
        break;
      }
      case 1:
        remove(slot);
        break;
      case 2: {
        const uint16_t len = in.take<uint16_t>();
        send(slot, in.bytes(len));
        break;
      }
      case 3: {
        const vmci_handle dst = handle_of(in.take<uint8_t>());
        const vmci_handle src = handle_of(in.take<uint8_t>());
        const size_t payload = in.take<uint16_t>() % (proto::kMaxDatagramPayload + 2);
        send(slot, proto::make_datagram(dst, src, std::vector<uint8_t>(payload, 0xa5)));
        break;
      }
      case 4:
        hypercall(slot, in);
        break;
      case 5: {
        const vmci_id resource = resource_of(in.take<uint8_t>());
        const uint32_t flags = in.take<uint8_t>() & 0x0f;
        const uint32_t priv = in.take<uint8_t>() & 0x07;
        const HandleResult r = core.create_host_handle(s.peer, resource, flags, priv);
        check_result(r.status);
        if (r.status >= VMCI_SUCCESS) {
          check(s.live && is_host_slot(slot));
          check(resource == VMCI_INVALID_ID || r.handle.resource == resource);
          check(!doorbells.count(
              proto::handle_key(VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, r.handle.resource))));
          check(host_handles.emplace(r.handle.resource, slot).second);
          remember(r.handle);
        } else {
          check(proto::is_invalid(r.handle));
        }
        break;
      }
      case 6: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        const HandleResult r = core.destroy_host_handle(s.peer, handle);
        check_result(r.status);
        if (r.status >= VMCI_SUCCESS) {
          auto it = host_handles.find(handle.resource);
          check(s.live && it != host_handles.end() && it->second == slot);
          check(r.handle.resource == handle.resource);
          host_handles.erase(it);
        }
        break;
      }
      case 7: {
        const uint8_t which = in.take<uint8_t>();
        if (s.live && s.counts) {
          report_reached(
              s, which < 224 ? s.settled + which % (s.order.size() + 1) : in.take<uint32_t>());
          break;
        }
        uint32_t id;
        if (which < 224 && !s.pending.empty()) {
          id = std::next(s.pending.begin(), which % s.pending.size())->first;
        } else {
          id = in.take<uint32_t>();
        }
        core.delivered(s.peer, id);
        if (s.live) {
          if (auto it = s.pending.find(id); it != s.pending.end()) {
            s.pending_bytes -= it->second;
            s.pending.erase(it);
          }
        }
        break;
      }
      case 8:
        if (s.live && s.counts) {
          report_reached(s, s.settled + static_cast<uint32_t>(s.order.size()));
          break;
        }
        while (s.live && !s.pending.empty()) {
          core.delivered(s.peer, s.pending.begin()->first);
          s.pending_bytes -= s.pending.begin()->second;
          s.pending.erase(s.pending.begin());
        }
        break;
      case 9: {
        QpAllocRequest request;
        request.handle = handle_of(in.take<uint8_t>());
        request.peer = cid_of(in.take<uint8_t>());
        request.flags = in.take<uint8_t>() & 0x0f;
        request.priv_flags = in.take<uint8_t>() & 0x07;
        request.produce_size = size_of(in.take<uint16_t>());
        request.consume_size = size_of(in.take<uint16_t>());
        const QueuePairReply r = core.qpair_alloc(s.peer, request);
        check_result(r.status);
        if (r.status >= VMCI_SUCCESS) {
          check(s.live);
          allocated(slot, r.handle, request.produce_size, request.consume_size, r.memory);
        } else {
          check(r.memory == nullptr && proto::is_invalid(r.handle));
        }
        break;
      }
      case 10: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        const int r = core.qpair_detach(s.peer, handle);
        check_result(r);
        if (r >= VMCI_SUCCESS) detached(slot, handle);
        break;
      }
      case 11: {
        const vmci_id resource = resource_of(in.take<uint8_t>());
        const uint32_t priv = in.take<uint8_t>() & 0x07;
        const uint64_t index = in.take<uint16_t>() % (kNotifyIndexCount + 16);
        const HandleResult r = core.create_host_doorbell(s.peer, resource, priv, index);
        check_result(r.status);
        if (r.status >= VMCI_SUCCESS) {
          check(s.live && is_host_slot(slot) && index < kNotifyIndexCount);
          check(r.handle.context == VMCI_HOST_CONTEXT_ID);
          check(resource == VMCI_INVALID_ID || r.handle.resource == resource);
          check(!host_handles.count(r.handle.resource));
          check(doorbells.emplace(proto::handle_key(r.handle), slot).second);
          remember(r.handle);
        }
        break;
      }
      case 12: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        const int r = core.destroy_host_doorbell(s.peer, handle);
        check_result(r);
        if (r >= VMCI_SUCCESS) {
          auto it = doorbells.find(proto::handle_key(handle));
          check(it != doorbells.end() && it->second == slot);
          doorbells.erase(it);
        }
        break;
      }
      case 13: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        const uint32_t priv = in.take<uint8_t>() & 0x07;
        const uint64_t rung = rings;
        const int r = core.notify_doorbell(s.peer, handle, priv);
        check_result(r);
        check(r >= VMCI_SUCCESS ? rings == rung + 1 : rings == rung);
        break;
      }
      case 14:
        update_context_id(arg, in.take<uint8_t>());  // `arg` is the old id's byte
        break;
      default:
        break;
    }
  }

  void update_context_id(uint8_t old_byte, uint8_t new_byte) {
    const vmci_id old_cid = old_byte % 4 < 3 ? slots[old_byte % 4].cid : old_byte / 4;
    const vmci_id new_cid = cid_of(new_byte);
    const int guest = live_slot_with_cid(old_cid);
    const int r = core.update_context_id(old_cid, new_cid);
    check_result(r);
    if (guest < 0 || is_host_slot(guest)) {
      check(r == VMCI_ERROR_NOT_FOUND);
      return;
    }
    if (r >= VMCI_SUCCESS) {
      check(VMCI_CONTEXT_IS_VM(new_cid));
      check(live_slot_with_cid(new_cid) < 0 || new_cid == old_cid);
      slots[guest].cid = new_cid;
    }
  }

  void hypercall(int slot, Input& in) {
    const uint8_t kind = in.take<uint8_t>() % 8;
    std::vector<uint8_t> dg;
    auto to = [](uint32_t rid) { return VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, rid); };
    switch (kind) {
      case 0:
        dg = proto::make_datagram(to(VMCI_GET_CONTEXT_ID), VMCI_ANON_SRC_HANDLE, {});
        break;
      case 1: {
        const uint32_t n = in.take<uint8_t>();
        std::vector<uint8_t> payload(8 + 4 * n);
        std::memcpy(payload.data(), &n, 4);
        for (uint32_t i = 0; i < n; ++i) {
          const uint32_t rid = in.take<uint8_t>();
          std::memcpy(payload.data() + 8 + 4 * i, &rid, 4);
        }
        dg = proto::make_datagram(to(VMCI_RESOURCES_QUERY), VMCI_ANON_SRC_HANDLE, payload);
        break;
      }
      case 2: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        const vmci_id peer = cid_of(in.take<uint8_t>());
        const uint32_t flags = in.take<uint8_t>() & 0x0f;
        const uint64_t produce = size_of(in.take<uint16_t>());
        const uint64_t consume = size_of(in.take<uint16_t>());
        const uint8_t bits = in.take<uint8_t>();
        const bool fits =
            produce <= VMCI_MAX_GUEST_QP_MEMORY && consume <= VMCI_MAX_GUEST_QP_MEMORY;
        dg = proto::make_qp_alloc_message(handle, peer, flags, fits ? produce : 0,
                                          fits ? consume : 0);
        if (!fits) {
          // Sizes the page list cannot match: the parser refuses them.
          vmci_queue_pair_alloc_msg msg;
          std::memcpy(&msg, dg.data(), sizeof msg);
          msg.produce_size = produce;
          msg.consume_size = consume;
          std::memcpy(dg.data(), &msg, sizeof msg);
        }
        if (bits & 1) dg.pop_back();
        break;
      }
      case 3:
        dg = proto::make_qp_detach_message(handle_of(in.take<uint8_t>()));
        break;
      case 4: {
        const vmci_handle handle = handle_of(in.take<uint8_t>());
        dg = proto::make_doorbell_link_message(handle,
                                               in.take<uint16_t>() % (kNotifyIndexCount + 16));
        break;
      }
      case 5:
        dg = proto::make_doorbell_message(VMCI_DOORBELL_UNLINK, handle_of(in.take<uint8_t>()));
        break;
      case 6:
        dg = proto::make_doorbell_message(VMCI_DOORBELL_NOTIFY, handle_of(in.take<uint8_t>()));
        break;
      default:
        dg = proto::make_datagram(to(in.take<uint8_t>()), VMCI_ANON_SRC_HANDLE, {});
        break;
    }
    const uint64_t rung = rings;
    send(slot, dg);
    if (kind != 6) check(rings == rung);
  }

  // Every peer goes; nothing may stay behind.
  void finish() {
    for (int i = 0; i < kSlots; ++i) {
      if (slots[i].live) {
        remove(i);
        settle();
      }
    }
    const Stats st = core.stats();
    check(st.guest_contexts == 0 && st.host_connections == 0);
    check(st.host_datagram_handles == 0 && st.doorbells == 0);
    check(st.queue_pairs == 0 && st.queue_pair_bytes == 0);
    check(st.ring_channels == 0 && st.ring_grants == 0);
    check(st.pending_datagrams == 0 && st.pending_datagram_bytes == 0);
    check(pairs.empty() && channels.empty() && host_handles.empty() && doorbells.empty());
    for (const auto& weak : pair_memory) check(weak.expired());
    for (const auto& weak : channel_memory) check(weak.expired());
  }
};

uint32_t Sink::deliveries_reached() const { return fuzz_->slots[slot_].reached; }

void Sink::deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) {
  check(fuzz_->slots[slot_].live);
  check(proto::check_datagram(datagram) == VMCI_SUCCESS);
  const vmci_datagram h = proto::header_of(datagram);
  if (proto::is_event_datagram(h)) check(proto::check_event_datagram(datagram) == VMCI_SUCCESS);
  Told t{Told::kDeliver, slot_};
  t.id = delivery_id;
  t.size = datagram.size();
  t.header = h;
  if (proto::is_event_datagram(h)) {
    // check_event_datagram: at least the event type follows the header.
    std::memcpy(&t.event, datagram.data() + sizeof h, sizeof t.event);
  }
  fuzz_->told.push_back(t);
}

void Sink::ring(uint64_t index) {
  check(fuzz_->slots[slot_].live);
  check(index < kNotifyIndexCount);
  ++fuzz_->rings;
}

void Sink::grant(const proto::RingGrantBody& grant, const RingChannelFile& memory, bool first) {
  check(fuzz_->slots[slot_].live);
  check(memory.channel() != nullptr && memory.fd() >= 0);
  if (first) fuzz_->channel_memory.push_back(memory.channel());
  Told t{Told::kGrant, slot_};
  t.grant = grant;
  t.first = first;
  fuzz_->told.push_back(t);
}

void Sink::close_ring_channel(uint32_t channel_id, proto::RingSide side) {
  check(fuzz_->slots[slot_].live);
  Told t{Told::kClose, slot_};
  t.id = channel_id;
  t.side = static_cast<uint8_t>(side);
  fuzz_->told.push_back(t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  Fuzz fuzz(limits_for(in.take<uint8_t>()));
  while (in.size > 0) {
    fuzz.run(in);
    fuzz.settle();
  }
  fuzz.finish();
  return 0;
}
