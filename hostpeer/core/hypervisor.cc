#include "hypervisor.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <tuple>

#include "vmci/proto/datagram.h"
#include "vmci/proto/datagram_lane.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue_pair_hypercalls.h"

namespace vmci::host {
namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {

// The hypercalls this hypervisor answers; VMCI_RESOURCES_QUERY reports them.
constexpr uint32_t kImplementedHypercalls[] = {
    VMCI_RESOURCES_QUERY, VMCI_GET_CONTEXT_ID,  VMCI_DOORBELL_LINK,   VMCI_DOORBELL_UNLINK,
    VMCI_DOORBELL_NOTIFY, VMCI_QUEUEPAIR_ALLOC, VMCI_QUEUEPAIR_DETACH};

bool is_obsolete_hypercall(uint32_t resource) {
  return resource >= VMCI_DATAGRAM_REQUEST_MAP && resource <= VMCI_EVENT_UNSUBSCRIBE;
}

// Events from the hypervisor may use this much more than the pending cap
// (spec §3.5: 1024 events of header + largest event data).
constexpr uint64_t kEventHeadroom = 1024 * (sizeof(vmci_datagram) + sizeof(vmci_event_data_max));

// What a peer can make the core log once per request, as often as it
// likes: each is logged a burst at a time per peer (request_log_).
enum class LoggedRefusal : uint32_t {
  kMalformedDatagram,
  kMalformedQueuePairAlloc,
  kForgedSource,
  kUnknownDelivery,
  kOverPendingCap,  // the receiver's key: whoever sends to it
};

const char* name_of(LoggedRefusal reason) {
  switch (reason) {
    case LoggedRefusal::kMalformedDatagram:
      return "malformed or oversized datagrams refused";
    case LoggedRefusal::kMalformedQueuePairAlloc:
      return "malformed queue pair alloc hypercalls refused";
    case LoggedRefusal::kForgedSource:
      return "datagrams with a source not its own refused";
    case LoggedRefusal::kUnknownDelivery:
      return "acknowledgements of deliveries it was not given";
    case LoggedRefusal::kOverPendingCap:
      return "datagrams refused at the pending cap";
  }
  return "refusals";
}

uint32_t key_of(LoggedRefusal reason) { return static_cast<uint32_t>(reason); }

}  // namespace

Hypervisor::Hypervisor(Limits limits, std::shared_ptr<spdlog::logger> log,
                       QueuePairMemoryFactory make_memory, RingChannelFactory make_ring_channel)
    : limits_(limits),
      log_(std::move(log)),
      started_unix_ms_(unix_ms_now()),
      request_log_([this](const proto::LogSuppressed& s) {
        auto it = peers_.find(s.peer);
        const auto reason = static_cast<LoggedRefusal>(s.reason);
        log_->log(
            reason == LoggedRefusal::kOverPendingCap ? spdlog::level::info : spdlog::level::warn,
            "{}: {} more {}, not logged (over {:.1f} s)",
            it != peers_.end() ? describe(it->second) : "peer #" + std::to_string(s.peer), s.lines,
            name_of(reason), static_cast<double>(s.over_ns()) / 1e9);
      }),
      make_memory_(std::move(make_memory)),
      broker_(limits),
      doorbells_(limits),
      ring_channels_(std::move(make_ring_channel)) {
  if (!make_memory_) {
    make_memory_ = [this](vmci_handle handle, uint64_t produce, uint64_t consume,
                          std::string* error) {
      return memory_reserve_.take(handle, produce, consume, error);
    };
  }
}

void Hypervisor::restock_memory() { memory_reserve_.restock(); }

std::string Hypervisor::describe(const Peer& peer) const {
  if (peer.role == proto::Role::kHost) return "host connection #" + std::to_string(peer.id);
  return "guest context " + std::to_string(peer.cid);
}

vmci_id Hypervisor::assign_guest_cid() {
  // From 16 upward, skipping ids in use, wrapping before VMCI_INVALID_ID.
  for (;;) {
    const vmci_id cid = next_guest_cid_;
    next_guest_cid_ = cid + 1 == VMCI_INVALID_ID ? VMCI_RESERVED_CID_LIMIT : cid + 1;
    if (!guests_.count(cid)) return cid;
  }
}

Admission Hypervisor::admit_untraced(const PeerHello& hello, PeerSink* sink) {
  Peer peer;
  peer.id = next_peer_id_;
  peer.role = hello.role;
  peer.cid = VMCI_HOST_CONTEXT_ID;
  peer.sink = sink;
  peer.allows_ring_channels = hello.allows_ring_channels;
  peer.rings_through_channels = hello.rings_through_channels && hello.allows_ring_channels;
  peer.takes_host_lanes = hello.takes_host_lanes && hello.allows_ring_channels;
  peer.supplies_guest_memory = hello.supplies_guest_memory;
  peer.pending = PendingDeliveries(hello.counts_deliveries);
  peer.takes_extents = hello.takes_extents;
  peer.pid = hello.pid;
  peer.uid = hello.uid;
  peer.since_unix_ms = unix_ms_now();
  if (hello.role == proto::Role::kHost) {
    if (!hello.trusted_for_host) {
      return {VMCI_ERROR_NO_ACCESS, 0, VMCI_INVALID_ID,
              "the host role (context 2) is only for trusted users"};
    }
    if (hello.supplies_guest_memory) {
      return {VMCI_ERROR_INVALID_ARGS, 0, VMCI_INVALID_ID,
              "the guest-memory feature is for guests: a host endpoint's queue-pair memory is "
              "hostpeer's or its guest's"};
    }
  } else if (hello.role == proto::Role::kGuest) {
    if (hello.priv_flags != VMCI_NO_PRIVILEGE_FLAGS &&
        hello.priv_flags != VMCI_PRIVILEGE_FLAG_RESTRICTED) {
      return {VMCI_ERROR_INVALID_ARGS, 0, VMCI_INVALID_ID,
              "a guest context's privileges are 0 or RESTRICTED, not " +
                  std::to_string(hello.priv_flags)};
    }
    peer.priv_flags = hello.priv_flags;
    if (hello.requested_cid != VMCI_INVALID_ID) {
      if (!VMCI_CONTEXT_IS_VM(hello.requested_cid)) {
        return {VMCI_ERROR_INVALID_ARGS, 0, VMCI_INVALID_ID,
                "context id " + std::to_string(hello.requested_cid) +
                    " is reserved (a guest may ask for 3..4294967294)"};
      }
      if (guests_.count(hello.requested_cid)) {
        return {VMCI_ERROR_ALREADY_EXISTS, 0, VMCI_INVALID_ID,
                "context id " + std::to_string(hello.requested_cid) + " is in use"};
      }
      peer.cid = hello.requested_cid;
    } else {
      peer.cid = assign_guest_cid();
    }
    guests_[peer.cid] = peer.id;
  } else {
    return {VMCI_ERROR_INVALID_ARGS, 0, VMCI_INVALID_ID, "unknown role"};
  }
  ++next_peer_id_;
  ++connections_admitted_;
  peers_.emplace(peer.id, peer);
  log_->info("{} connected", describe(peer));
  return {VMCI_SUCCESS, peer.id, peer.cid, {}};
}

void Hypervisor::remove(PeerId id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  const Peer gone = it->second;
  request_log_.forget(id);  // what was counted and not logged of it, while it has a name
  if (observer_) observer_->removed(gone.id, gone.cid);
  const QpEndpoint endpoint = endpoint_of(gone);
  peers_.erase(it);
  if (gone.role == proto::Role::kGuest) {
    guests_.erase(gone.cid);
    // Every host connection hears of it (the host context is registered for
    // CTX_REMOVED of every guest context; design decision 6).
    for (auto& [peer_id, peer] : peers_) {
      if (peer.role != proto::Role::kHost) continue;
      if (enqueue(peer,
                  proto::make_context_event(VMCI_HOST_CONTEXT_ID, VMCI_EVENT_CTX_REMOVED, gone.cid),
                  id) >= 0) {
        ++events_sent_;
      }
    }
  } else {
    std::erase_if(host_handles_, [&](const auto& entry) { return entry.second.owner == id; });
  }
  // Its doorbells cease to exist, without events (spec §8); no ring channel
  // rings them, or is rung by it, any more.
  doorbells_.unlink_all(id);
  close_ring_channels(id);
  // Then its queue pairs are detached (spec §8).
  std::vector<QpNotice> notices;
  settle_queue_pairs(id, notices, broker_.detach_all(endpoint, &notices));
  log_->info("{} gone ({} pending datagrams dropped)", describe(gone), gone.pending.count());
  if (peers_.empty()) memory_reserve_.clear();  // nothing held for nobody
}

int64_t Hypervisor::send_untraced(PeerId id, std::span<const uint8_t> datagram,
                         std::shared_ptr<const QueuePairMemory>* memory) {
  const int64_t result = route_datagram(id, datagram, memory);
  if (auto it = peers_.find(id); it != peers_.end()) {
    ++it->second.datagrams_sent;
    it->second.bytes_sent += datagram.size();
    if (result < VMCI_SUCCESS) {
      ++it->second.refused;
      ++refusals_by_status_[result];
    }
  }
  return result;
}

int64_t Hypervisor::route_datagram(PeerId id, std::span<const uint8_t> datagram,
                                   std::shared_ptr<const QueuePairMemory>* memory) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return VMCI_ERROR_UNAVAILABLE;
  const Peer& sender = it->second;
  if (sender.role == proto::Role::kGuest && proto::is_qp_alloc_hypercall(datagram)) {
    // May exceed VMCI_MAX_DG_SIZE (spec §11 item 33); its own parser checks it.
    return hypercall(sender, datagram, memory);
  }
  if (proto::check_datagram(datagram) != VMCI_SUCCESS) {
    request_log_.write(id, key_of(LoggedRefusal::kMalformedDatagram), [&] {
      log_->warn("{}: malformed or oversized datagram ({} bytes) refused", describe(sender),
                 datagram.size());
    });
    return VMCI_ERROR_INVALID_ARGS;
  }
  const vmci_datagram h = proto::header_of(datagram);
  if (h.dst.context == VMCI_INVALID_ID) return VMCI_ERROR_INVALID_ARGS;
  int64_t result;
  if (sender.role == proto::Role::kGuest && h.dst.context == VMCI_HYPERVISOR_CONTEXT_ID) {
    result = hypercall(sender, datagram, memory);
  } else {
    result = sender.role == proto::Role::kGuest ? send_from_guest(sender, datagram)
                                                : send_from_host(sender, datagram);
  }
  log_->debug("{}: datagram {} -> {} ({} bytes): {}", describe(sender), proto::to_string(h.src),
              proto::to_string(h.dst), datagram.size(), proto::describe_result(result));
  return result;
}

int64_t Hypervisor::hypercall(const Peer& sender, std::span<const uint8_t> datagram,
                              std::shared_ptr<const QueuePairMemory>* memory) {
  const vmci_datagram h = proto::header_of(datagram);
  switch (h.dst.resource) {
    case VMCI_QUEUEPAIR_ALLOC: {
      proto::QpAllocFields f;
      if (sender.supplies_guest_memory) return guest_pages_alloc(sender, datagram, memory);
      if (proto::parse_qp_alloc_message(datagram, &f) != VMCI_SUCCESS) {
        request_log_.write(sender.id, key_of(LoggedRefusal::kMalformedQueuePairAlloc), [&] {
          log_->warn("{}: malformed queue pair alloc hypercall ({} bytes) refused",
                     describe(sender), datagram.size());
        });
        return VMCI_ERROR_INVALID_ARGS;
      }
      QueuePairReply reply = qpair_alloc(
          sender.id, QpAllocRequest{f.handle, f.peer, f.flags, 0, f.produce_size, f.consume_size});
      if (memory != nullptr) *memory = std::move(reply.memory);
      return reply.status;
    }
    case VMCI_DOORBELL_LINK: {
      vmci_handle handle;
      uint64_t index;
      if (proto::parse_doorbell_link_message(datagram, &handle, &index) != VMCI_SUCCESS) {
        return VMCI_ERROR_INVALID_ARGS;
      }
      return doorbells_.link(doorbell_owner_of(sender), handle, index, 0);
    }
    case VMCI_DOORBELL_UNLINK:
    case VMCI_DOORBELL_NOTIFY: {
      vmci_handle handle;
      if (proto::parse_doorbell_message(datagram, &handle) != VMCI_SUCCESS) {
        return VMCI_ERROR_INVALID_ARGS;
      }
      if (h.dst.resource == VMCI_DOORBELL_UNLINK) {
        return unlinked(doorbells_.unlink(doorbell_owner_of(sender), handle), handle);
      }
      return ring_doorbell(sender, handle, 0);  // a guest's flags are not sent (§4.4)
    }
    case VMCI_QUEUEPAIR_DETACH: {
      vmci_handle handle;
      if (proto::parse_qp_detach_message(datagram, &handle) != VMCI_SUCCESS) {
        return VMCI_ERROR_INVALID_ARGS;
      }
      return qpair_detach(sender.id, handle);
    }
    case VMCI_RESOURCES_QUERY:
      return proto::answer_resources_query(datagram, kImplementedHypercalls);
    case VMCI_GET_CONTEXT_ID:
      return sender.cid;
    default:
      if (is_obsolete_hypercall(h.dst.resource)) return VMCI_ERROR_OBSOLETE;
      log_->debug("{}: hypercall {} ({}) not implemented", describe(sender), h.dst.resource,
                  proto::hypercall_name(h.dst.resource));
      return VMCI_ERROR_INVALID_RESOURCE;
  }
}

int64_t Hypervisor::guest_pages_alloc(const Peer& sender, std::span<const uint8_t> datagram,
                                      std::shared_ptr<const QueuePairMemory>* memory) {
  auto refuse = [&](const std::string& why) {
    request_log_.write(sender.id, key_of(LoggedRefusal::kMalformedQueuePairAlloc), [&] {
      log_->warn("{}: queue pair alloc hypercall ({} bytes) refused: {}", describe(sender),
                 datagram.size(), why);
    });
    return VMCI_ERROR_INVALID_ARGS;
  };
  if (!sender.guest_memory) return refuse("no guest memory map was sent (guest-memory frame)");
  const size_t ppn_size = sender.guest_memory->ppn_size();
  proto::QpAllocFields f;
  if (proto::parse_qp_alloc_message(datagram, &f, ppn_size) != VMCI_SUCCESS) {
    return refuse("malformed, with " + std::to_string(ppn_size * 8) + "-bit page numbers");
  }
  std::vector<QueueExtent> pages;
  std::string error;
  if (!sender.guest_memory->translate(
          f.num_ppns, [&](uint64_t i) { return proto::qp_alloc_ppn(datagram, i, ppn_size); },
          &pages, &error)) {
    return refuse(error);
  }
  QueuePairReply reply = qpair_alloc_untraced(
      sender.id, QpAllocRequest{f.handle, f.peer, f.flags, 0, f.produce_size, f.consume_size},
      &pages);
  if (memory != nullptr) *memory = std::move(reply.memory);
  return reply.status;
}

int Hypervisor::set_guest_memory(PeerId id, uint32_t flags,
                                 std::span<const proto::GuestMemoryRegion> regions,
                                 std::vector<int> fds) {
  auto it = peers_.find(id);
  if (it == peers_.end()) {
    for (int fd : fds) ::close(fd);
    return VMCI_ERROR_UNAVAILABLE;
  }
  Peer& peer = it->second;
  if (peer.role != proto::Role::kGuest || !peer.supplies_guest_memory) {
    for (int fd : fds) ::close(fd);
    log_->warn("{}: guest memory map refused: only a guest that said it supplies its memory "
               "(the guest-memory feature) sends one",
               describe(peer));
    return VMCI_ERROR_NO_ACCESS;
  }
  std::string error;
  auto map = GuestMemoryMap::create(flags, regions, std::move(fds), &error);
  if (!map) {
    log_->warn("{}: guest memory map refused: {}", describe(peer), error);
    return VMCI_ERROR_INVALID_ARGS;
  }
  peer.guest_memory = std::move(map);
  log_->info("{}: guest memory map of {} regions", describe(peer), regions.size());
  return VMCI_SUCCESS;
}

int64_t Hypervisor::send_from_guest(const Peer& sender, std::span<const uint8_t> datagram) {
  const vmci_datagram h = proto::header_of(datagram);
  if (h.src.context != sender.cid) {
    request_log_.write(sender.id, key_of(LoggedRefusal::kForgedSource), [&] {
      log_->warn("{}: datagram with source {} refused (not its own context)", describe(sender),
                 proto::to_string(h.src));
    });
    return VMCI_ERROR_NO_ACCESS;
  }
  if (h.dst.context == VMCI_HOST_CONTEXT_ID) {
    const int64_t result = deliver_to_host_handle(sender.id, h.dst, sender.priv_flags, datagram);
    if (result >= VMCI_SUCCESS) grant_datagram_lane(sender, h.dst);
    return result;
  }
  if (h.dst.context == sender.cid) {  // to itself, through the hypervisor
    return enqueue(peers_.at(sender.id), {datagram.begin(), datagram.end()}, sender.id);
  }
  return VMCI_ERROR_DST_UNREACHABLE;  // VM to VM, or the obsolete well-known context
}

int Hypervisor::route_from_host(vmci_id dst_context) const {
  if (dst_context == VMCI_INVALID_ID) return VMCI_ERROR_INVALID_ARGS;
  if (dst_context == VMCI_HYPERVISOR_CONTEXT_ID) return VMCI_ERROR_DEVICE_NOT_FOUND;
  if (dst_context == VMCI_HOST_CONTEXT_ID || guests_.count(dst_context) != 0) return VMCI_SUCCESS;
  return VMCI_ERROR_DST_UNREACHABLE;
}

// In Linux's order: vmci_route (which may fill in the source context), then
// dg_dispatch_as_host.
int64_t Hypervisor::send_from_host(const Peer& sender, std::span<const uint8_t> datagram) {
  vmci_datagram h = proto::header_of(datagram);
  const int route = route_from_host(h.dst.context);
  if (route < VMCI_SUCCESS) return route;
  if (h.src.context == VMCI_INVALID_ID) {
    h.src.context = VMCI_HOST_CONTEXT_ID;
  } else if (h.dst.context != VMCI_HOST_CONTEXT_ID && VMCI_CONTEXT_IS_VM(h.src.context) &&
             h.src.context != h.dst.context) {
    return VMCI_ERROR_DST_UNREACHABLE;
  }
  if (h.src.context != VMCI_HOST_CONTEXT_ID) return VMCI_ERROR_NO_ACCESS;
  const HostHandle* src = find_host_handle(h.src.resource);
  if (src == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (src->owner != sender.id) return VMCI_ERROR_NO_HANDLE;

  std::vector<uint8_t> copy(datagram.begin(), datagram.end());
  std::memcpy(copy.data(), &h, sizeof h);
  if (h.dst.context == VMCI_HOST_CONTEXT_ID) {
    return deliver_to_host_handle(sender.id, h.dst, src->priv_flags, copy);
  }
  Peer* guest = find_guest(h.dst.context);
  if (proto::deny_interaction(src->priv_flags, guest->priv_flags)) return VMCI_ERROR_NO_ACCESS;
  const int64_t result = enqueue(*guest, std::move(copy), sender.id);
  if (result >= VMCI_SUCCESS) grant_host_lane(sender, h.src, *guest);
  return result;
}

int64_t Hypervisor::deliver_to_host_handle(PeerId sender, vmci_handle dst, uint32_t sender_priv,
                                           std::span<const uint8_t> datagram) {
  const HostHandle* handle = find_host_handle(dst.resource);
  if (handle == nullptr) return VMCI_ERROR_INVALID_RESOURCE;
  if (proto::deny_interaction(sender_priv, handle->priv_flags)) return VMCI_ERROR_NO_ACCESS;
  return enqueue(peers_.at(handle->owner), {datagram.begin(), datagram.end()}, sender);
}

int64_t Hypervisor::enqueue(Peer& receiver, std::vector<uint8_t> datagram, PeerId cause) {
  const uint64_t size = datagram.size();
  const vmci_datagram h = proto::header_of(datagram);
  const bool from_hypervisor =
      h.src.context == VMCI_HYPERVISOR_CONTEXT_ID && h.src.resource == VMCI_CONTEXT_RESOURCE_ID;
  const uint64_t cap = limits_.max_pending_datagram_bytes + (from_hypervisor ? kEventHeadroom : 0);
  settle_pending(receiver);
  if (receiver.pending.bytes() + size >= cap) {
    request_log_.write(receiver.id, key_of(LoggedRefusal::kOverPendingCap), [&] {
      log_->info("{}: {} pending datagram bytes, {} more refused", describe(receiver),
                 receiver.pending.bytes(), size);
    });
    return VMCI_ERROR_NO_RESOURCES;
  }
  uint32_t id = receiver.next_delivery_id++;
  if (id == 0) id = receiver.next_delivery_id++;
  receiver.pending.add(id, size);
  ++receiver.datagrams_received;
  receiver.bytes_received += size;
  if (from_hypervisor && size >= sizeof(vmci_event_msg)) {
    vmci_event_msg event;
    std::memcpy(&event, datagram.data(), sizeof event);
    ++receiver.events_received[event.event_data.event];
  }
  ++datagrams_routed_;
  ++receiver.deliveries_queued;
  publish_deliveries(receiver, cause);
  if (observer_) observer_->delivered(receiver.id, receiver.cid, datagram);
  receiver.sink->deliver(id, std::move(datagram));
  return static_cast<int64_t>(size);
}

void Hypervisor::publish_deliveries(const Peer& receiver, PeerId cause) {
  if (!receiver.takes_host_lanes) return;
  if (receiver.role == proto::Role::kGuest) {
    ring_channels_.publish_owner_deliveries(receiver.id, receiver.deliveries_queued);
  } else if (cause != kNoPeer) {
    ring_channels_.publish_owner_deliveries(cause, receiver.id, receiver.deliveries_queued);
  }
}

void Hypervisor::delivered(PeerId id, uint32_t delivery_id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  if (!peer.pending.take(delivery_id)) {
    request_log_.write(id, key_of(LoggedRefusal::kUnknownDelivery), [&] {
      log_->warn("{}: acknowledged delivery {} that it was not given", describe(peer), delivery_id);
    });
  }
}

void Hypervisor::settle_pending(const Peer& peer) const {
  if (!peer.pending.counted()) return;
  const uint32_t reached = peer.sink->deliveries_reached();
  const uint64_t before = peer.pending.count();
  if (!peer.pending.settle(reached)) {
    request_log_.write(peer.id, key_of(LoggedRefusal::kUnknownDelivery), [&] {
      log_->warn("{}: counted {} deliveries reached where {} were pending", describe(peer), reached,
                 before);
    });
  }
}

const Hypervisor::HostHandle* Hypervisor::find_host_handle(vmci_id resource) const {
  auto it = host_handles_.find(resource);
  return it == host_handles_.end() ? nullptr : &it->second;
}

Hypervisor::Peer* Hypervisor::find_guest(vmci_id cid) {
  auto it = guests_.find(cid);
  return it == guests_.end() ? nullptr : &peers_.at(it->second);
}

HandleResult Hypervisor::create_host_handle_untraced(PeerId id, vmci_id resource, uint32_t flags,
                                            uint32_t priv_flags) {
  const HandleResult fail{VMCI_ERROR_INVALID_ARGS, VMCI_INVALID_HANDLE};
  auto it = peers_.find(id);
  if (it == peers_.end()) return {VMCI_ERROR_UNAVAILABLE, VMCI_INVALID_HANDLE};
  Peer& peer = it->second;
  if (peer.role != proto::Role::kHost) return {VMCI_ERROR_NO_ACCESS, VMCI_INVALID_HANDLE};
  if ((priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS) != 0) return fail;
  if (flags & VMCI_FLAG_WELLKNOWN_DG_HND) return fail;
  if (peer.handles >= limits_.max_host_datagram_handles) {
    log_->info("{}: datagram handle limit ({}) reached", describe(peer),
               limits_.max_host_datagram_handles);
    return {VMCI_ERROR_NO_RESOURCES, VMCI_INVALID_HANDLE};
  }
  if (resource == VMCI_INVALID_ID) {
    resource = free_host_resource();
    if (resource == VMCI_INVALID_ID) return {VMCI_ERROR_NO_HANDLE, VMCI_INVALID_HANDLE};
  } else if (host_resource_taken(resource)) {
    return {VMCI_ERROR_DUPLICATE_ENTRY, VMCI_INVALID_HANDLE};
  }
  const vmci_id context =
      (flags & VMCI_FLAG_ANYCID_DG_HND) ? VMCI_INVALID_ID : VMCI_HOST_CONTEXT_ID;
  const vmci_handle handle = VMCI_MAKE_HANDLE(context, resource);
  host_handles_[resource] = HostHandle{handle, flags, priv_flags, id};
  ++peer.handles;
  return {VMCI_SUCCESS, handle};
}

HandleResult Hypervisor::destroy_host_handle_untraced(PeerId id, vmci_handle handle) {
  const HandleResult not_found{VMCI_ERROR_NOT_FOUND, VMCI_INVALID_HANDLE};
  auto peer = peers_.find(id);
  if (peer == peers_.end()) return {VMCI_ERROR_UNAVAILABLE, VMCI_INVALID_HANDLE};
  if (proto::is_invalid(handle)) return {VMCI_ERROR_INVALID_ARGS, VMCI_INVALID_HANDLE};
  auto it = host_handles_.find(handle.resource);
  if (it == host_handles_.end() || it->second.owner != id) return not_found;
  const vmci_handle stored = it->second.handle;
  if (stored.context != handle.context && stored.context != VMCI_INVALID_ID &&
      handle.context != VMCI_INVALID_ID) {
    return not_found;
  }
  host_handles_.erase(it);
  --peer->second.handles;
  // Lanes are granted for the destination guests write, (host, resource)
  // even for an any-context handle: from now on their datagrams are refused.
  ring_channels_.revoke(VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, stored.resource));
  return {VMCI_SUCCESS, stored};
}

int Hypervisor::update_context_id_untraced(vmci_id old_cid, vmci_id new_cid) {
  Peer* guest = find_guest(old_cid);
  if (guest == nullptr) return VMCI_ERROR_NOT_FOUND;
  if (!VMCI_CONTEXT_IS_VM(new_cid)) return VMCI_ERROR_INVALID_ARGS;
  if (new_cid == old_cid) return VMCI_SUCCESS;
  if (guests_.count(new_cid)) return VMCI_ERROR_ALREADY_EXISTS;
  guests_.erase(old_cid);
  guests_[new_cid] = guest->id;
  guest->cid = new_cid;
  broker_.rename_context(guest->id, new_cid);
  // Grants name its doorbells by their old handles.
  close_ring_channels(guest->id);
  if (enqueue(*guest, proto::make_context_event(new_cid, VMCI_EVENT_CTX_ID_UPDATE, new_cid),
              guest->id) >= 0) {
    ++events_sent_;
  }
  log_->info("guest context {} is now context {}", old_cid, new_cid);
  return VMCI_SUCCESS;
}

QpEndpoint Hypervisor::endpoint_of(const Peer& peer) const {
  return QpEndpoint{peer.id, peer.cid, peer.priv_flags};
}

int Hypervisor::check_memory_for_attach(const Peer& caller, vmci_handle handle,
                                        bool with_guest_pages) {
  if (proto::is_invalid(handle)) return VMCI_SUCCESS;
  const uint64_t key = proto::handle_key(handle);
  auto memory = qp_memory_.find(key);
  if (memory == qp_memory_.end()) return VMCI_SUCCESS;  // a create, or the broker refuses it
  if (caller.role == proto::Role::kHost && memory->second->guest_pages() &&
      !caller.takes_extents) {
    log_->warn("{}: cannot attach to queue pair {}: its memory is a guest's pages, which this "
               "peer (protocol 2.0) cannot map",
               describe(caller), proto::to_string(handle));
    return VMCI_ERROR_UNAVAILABLE;
  }
  if (with_guest_pages) {
    auto creator = peers_.find(qp_creator_[key]);
    if (creator != peers_.end() && creator->second.role == proto::Role::kHost &&
        !creator->second.takes_extents) {
      log_->warn("{}: cannot attach to queue pair {}: its creator (protocol 2.0) cannot map the "
                 "guest's pages",
                 describe(caller), proto::to_string(handle));
      return VMCI_ERROR_UNAVAILABLE;
    }
  }
  return VMCI_SUCCESS;
}

QueuePairReply Hypervisor::qpair_alloc_untraced(PeerId id, const QpAllocRequest& request,
                                                std::vector<QueueExtent>* guest_pages) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return {VMCI_ERROR_UNAVAILABLE, VMCI_INVALID_HANDLE, nullptr};
  const Peer& caller = it->second;
  // What the broker cannot know: whether the memory can reach both sides.
  if (const int ok = check_memory_for_attach(caller, request.handle, guest_pages != nullptr);
      ok < VMCI_SUCCESS) {
    return {ok, VMCI_INVALID_HANDLE, nullptr};
  }
  std::vector<QpNotice> notices;
  const QpAllocResult r = broker_.alloc(endpoint_of(caller), request, &notices);
  log_->debug("{}: queue pair alloc {} ({} / {} bytes, flags {:#x}): {}", describe(caller),
              proto::to_string(request.handle), request.produce_size, request.consume_size,
              request.flags, proto::describe_result(r.status));
  if (r.status < VMCI_SUCCESS) return {r.status, VMCI_INVALID_HANDLE, nullptr};
  const uint64_t key = proto::handle_key(r.handle);
  if (!r.created && guest_pages != nullptr) {
    // A guest supplying its pages attached to a pair the host created: the
    // guest's pages replace hostpeer's memory, and the creator maps them
    // before it sees its peer (the status page's memory generation).
    std::string error;
    std::shared_ptr<QueuePairMemory> old = qp_memory_.at(key);
    auto memory = QueuePairMemory::from_guest_pages(r.handle, request.produce_size,
                                                    request.consume_size, std::move(*guest_pages),
                                                    old.get(), &error);
    if (!memory) {
      log_->error("{}: queue pair {}: the guest's pages cannot be used: {}", describe(caller),
                  proto::to_string(r.handle), error);
      std::vector<QpNotice> none;
      broker_.detach(endpoint_of(caller), r.handle, &none);
      settle_queue_pairs(caller.id, none, {r.handle});
      return {VMCI_ERROR_NO_RESOURCES, VMCI_INVALID_HANDLE, nullptr};
    }
    qp_memory_[key] = std::move(memory);
    if (auto creator = peers_.find(qp_creator_[key]); creator != peers_.end()) {
      creator->second.sink->queue_pair_memory(r.handle, qp_memory_.at(key));
    }
  }
  if (r.created) {
    // Guest view: a host creator's produce queue is the guest's consume queue.
    const bool host = caller.role == proto::Role::kHost;
    std::string error;
    std::unique_ptr<QueuePairMemory> memory =
        guest_pages != nullptr
            ? QueuePairMemory::from_guest_pages(r.handle, request.produce_size,
                                                request.consume_size, std::move(*guest_pages),
                                                nullptr, &error)
            : make_memory_(r.handle, host ? request.consume_size : request.produce_size,
                           host ? request.produce_size : request.consume_size, &error);
    if (!memory) {
      log_->error("{}: no memory for queue pair {}: {}", describe(caller),
                  proto::to_string(r.handle), error);
      std::vector<QpNotice> none;
      broker_.detach(endpoint_of(caller), r.handle, &none);
      return {VMCI_ERROR_NO_RESOURCES, VMCI_INVALID_HANDLE, nullptr};
    }
    qp_memory_[key] = std::move(memory);
    qp_creator_[key] = caller.id;
  }
  settle_queue_pairs(caller.id, notices, {r.handle});
  return {r.status, r.handle, qp_memory_.at(key)};
}

int Hypervisor::qpair_detach_untraced(PeerId id, vmci_handle handle) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return VMCI_ERROR_UNAVAILABLE;
  std::vector<QpNotice> notices;
  const int status = broker_.detach(endpoint_of(it->second), handle, &notices);
  log_->debug("{}: queue pair detach {}: {}", describe(it->second), proto::to_string(handle),
              proto::describe_result(status));
  if (status >= VMCI_SUCCESS) settle_queue_pairs(id, notices, {handle});
  return status;
}

void Hypervisor::settle_queue_pairs(PeerId cause, const std::vector<QpNotice>& notices,
                                    const std::vector<vmci_handle>& touched) {
  for (const QpNotice& n : notices) {
    auto peer = peers_.find(n.to);
    if (peer == peers_.end()) continue;
    if (enqueue(peer->second,
                proto::make_queue_pair_event(n.to_cid, n.event, n.handle, n.peer_id),
                cause) >= 0) {
      ++events_sent_;
    }
  }
  for (const vmci_handle& h : touched) {
    auto memory = qp_memory_.find(proto::handle_key(h));
    if (memory == qp_memory_.end()) continue;
    const int state = broker_.state_of(h);
    if (state == 0) {
      qp_creator_.erase(memory->first);
      qp_memory_.erase(memory);  // the last endpoint left: the pair is gone
    } else {
      memory->second->set_peer_attached(state == static_cast<int>(QpState::kAttachedMem));
    }
  }
}

DoorbellOwner Hypervisor::doorbell_owner_of(const Peer& peer) const {
  return DoorbellOwner{peer.id, peer.cid, peer.priv_flags};
}

int Hypervisor::ring_doorbell(const Peer& sender, vmci_handle handle, uint32_t caller_priv) {
  std::optional<uint32_t> dst_priv;
  if (handle.context == VMCI_HOST_CONTEXT_ID) {
    dst_priv = 0;
  } else if (const Peer* guest = find_guest(handle.context)) {
    dst_priv = guest->priv_flags;
  }
  const DoorbellRing ring = doorbells_.notify(
      DoorbellNotifier{sender.cid, sender.priv_flags, caller_priv}, handle, dst_priv);
  log_->debug("{}: doorbell notify {}: {}", describe(sender), proto::to_string(handle),
              proto::describe_result(ring.status));
  if (ring.status < VMCI_SUCCESS) return ring.status;
  Peer& owner = peers_.at(ring.peer);
  if (observer_) observer_->rang(owner.id, owner.cid, handle, ring.index);
  owner.sink->ring(ring.index);
  doorbells_.count_ring(handle);
  ++doorbells_rung_;
  if (sender.rings_through_channels && ring.peer != sender.id && owner.allows_ring_channels) {
    grant_ring_channel(sender, ring.peer, handle, caller_priv);
  }
  return VMCI_SUCCESS;
}

void Hypervisor::grant_ring_channel(const Peer& sender, PeerId owner, vmci_handle handle,
                                    uint32_t caller_priv) {
  proto::RingGrantBody body{};
  body.kind = static_cast<uint8_t>(proto::SlotKind::kDoorbell);
  body.priv_flags = caller_priv;
  grant_slot(sender, owner, handle, body);
}

void Hypervisor::grant_host_lane(const Peer& sender, vmci_handle source, const Peer& guest) {
  if (!sender.takes_host_lanes || !guest.takes_host_lanes) return;
  // The lane's cap leaves room for what is pending through hostpeer now
  // (the datagram that earned it, at least), so that while the guest holds
  // its callbacks the two together refuse where hostpeer alone would. Not
  // while less than a largest datagram would be left: the lane must take
  // any datagram once it is empty.
  const uint64_t cap = std::min<uint64_t>(limits_.max_pending_datagram_bytes, proto::kMaxLaneCap);
  if (guest.pending.bytes() >= cap || cap - guest.pending.bytes() <= VMCI_MAX_DG_SIZE) return;
  proto::RingGrantBody body{};
  body.kind = static_cast<uint8_t>(proto::SlotKind::kDatagramFromHost);
  body.lane_cap = static_cast<uint32_t>(cap - guest.pending.bytes());
  grant_slot(sender, guest.id, source, body);
}

void Hypervisor::grant_datagram_lane(const Peer& sender, vmci_handle handle) {
  const HostHandle* host_handle = find_host_handle(handle.resource);
  if (!sender.rings_through_channels || host_handle == nullptr ||
      host_handle->owner == sender.id) {
    return;
  }
  proto::RingGrantBody body{};
  body.kind = static_cast<uint8_t>(proto::SlotKind::kDatagram);
  body.lane_cap = static_cast<uint32_t>(
      std::min<uint64_t>(limits_.max_pending_datagram_bytes, proto::kMaxLaneCap));
  grant_slot(sender, host_handle->owner, handle, body);
}

void Hypervisor::grant_slot(const Peer& sender, PeerId owner, vmci_handle handle,
                            proto::RingGrantBody body) {
  // Both sides must allow ring channels (kFeatureNoRingChannels), and no
  // observer may need to see every datagram and ring (a capture).
  // (Whether the sender writes slots of this kind is its caller's to check.)
  auto owner_peer = peers_.find(owner);
  if ((observer_ && observer_->needs_all_traffic()) || !sender.allows_ring_channels ||
      owner_peer == peers_.end() || !owner_peer->second.allows_ring_channels) {
    return;
  }
  std::string error;
  bool first_refusal = false;
  const auto grant =
      ring_channels_.grant(sender.id, owner, handle, body.priv_flags, &error, &first_refusal);
  if (!grant) {
    // A bound reached is logged once (until the peer has room again), then
    // only counted (the snapshot's ring_channel_refusals).
    if (!error.empty()) {
      log_->log(first_refusal ? spdlog::level::warn : spdlog::level::debug,
                "{}: {} of {} goes through hostpeer: {}", describe(sender),
                proto::to_string(handle), describe(owner_peer->second), error);
    }
    return;
  }
  body.channel_id = grant->channel_id;
  body.slot = grant->slot;
  body.generation = grant->generation;
  body.handle = handle;
  body.ringer_cid = sender.cid;
  body.owner_cid = owner_peer->second.cid;
  // The owner hears first: a ring in the slot (or a datagram in the lane)
  // before it knows waits there.
  if (owner_peer->second.takes_host_lanes) {
    ring_channels_.publish_owner_deliveries(sender.id, owner, owner_peer->second.deliveries_queued);
  }
  body.side = static_cast<uint8_t>(proto::RingSide::kOwner);
  peers_.at(owner).sink->grant(body, *grant->memory, grant->first_for_owner);
  body.side = static_cast<uint8_t>(proto::RingSide::kRinger);
  sender.sink->grant(body, *grant->memory, grant->first_for_ringer);
}

int Hypervisor::unlinked(int status, vmci_handle handle) {
  if (status >= VMCI_SUCCESS) ring_channels_.revoke(handle);
  return status;
}

void Hypervisor::close_ring_channels(PeerId peer) {
  for (const ClosedRingChannel& c : ring_channels_.close_all(peer)) {
    if (auto it = peers_.find(c.ringer); it != peers_.end()) {
      it->second.sink->close_ring_channel(c.channel_id, proto::RingSide::kRinger);
    }
    if (auto it = peers_.find(c.owner); it != peers_.end()) {
      it->second.sink->close_ring_channel(c.channel_id, proto::RingSide::kOwner);
    }
  }
}

bool Hypervisor::host_resource_taken(vmci_id resource) const {
  return host_handles_.count(resource) != 0 ||
         doorbells_.contains(VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, resource));
}

vmci_id Hypervisor::free_host_resource() {
  // Every id above the reserved ones taken (datagram handles and doorbells).
  const uint64_t span = uint64_t{VMCI_INVALID_ID} - (VMCI_RESERVED_RESOURCE_ID_MAX + 1);
  if (host_handles_.size() + doorbells_.count() >= span) return VMCI_INVALID_ID;
  vmci_id resource;
  do {
    resource = next_host_resource_++;
    if (next_host_resource_ == VMCI_INVALID_ID) {
      next_host_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
    }
  } while (host_resource_taken(resource));
  return resource;
}

HandleResult Hypervisor::create_host_doorbell_untraced(PeerId id, vmci_id resource, uint32_t priv_flags,
                                              uint64_t notify_index) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return {VMCI_ERROR_UNAVAILABLE, VMCI_INVALID_HANDLE};
  const Peer& peer = it->second;
  if (peer.role != proto::Role::kHost) return {VMCI_ERROR_NO_ACCESS, VMCI_INVALID_HANDLE};
  if (resource == VMCI_INVALID_ID) {
    resource = free_host_resource();
    if (resource == VMCI_INVALID_ID) return {VMCI_ERROR_NO_HANDLE, VMCI_INVALID_HANDLE};
  } else if (host_resource_taken(resource)) {
    return {VMCI_ERROR_DUPLICATE_ENTRY, VMCI_INVALID_HANDLE};
  }
  const vmci_handle handle = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, resource);
  const int status = doorbells_.link(doorbell_owner_of(peer), handle, notify_index, priv_flags);
  if (status < VMCI_SUCCESS) return {status, VMCI_INVALID_HANDLE};
  return {VMCI_SUCCESS, handle};
}

int Hypervisor::destroy_host_doorbell_untraced(PeerId id, vmci_handle handle) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return VMCI_ERROR_UNAVAILABLE;
  if (it->second.role != proto::Role::kHost) return VMCI_ERROR_NO_ACCESS;
  if (proto::is_invalid(handle)) return VMCI_ERROR_INVALID_ARGS;
  return unlinked(doorbells_.unlink(doorbell_owner_of(it->second), handle), handle);
}

int Hypervisor::notify_doorbell_untraced(PeerId id, vmci_handle handle, uint32_t priv_flags) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return VMCI_ERROR_UNAVAILABLE;
  if (it->second.role != proto::Role::kHost) return VMCI_ERROR_NO_ACCESS;  // guests: the hypercall
  // Linux's vmci_doorbell_notify: the arguments, the route, then the rules
  // of vmci_ctx_notify_dbell.
  if (proto::is_invalid(handle) || (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  const int route = route_from_host(handle.context);
  if (route < VMCI_SUCCESS) return route;
  return ring_doorbell(it->second, handle, priv_flags);
}

Stats Hypervisor::stats() const {
  Stats s;
  for (const auto& [id, peer] : peers_) {
    if (peer.role == proto::Role::kGuest) {
      ++s.guest_contexts;
    } else {
      ++s.host_connections;
    }
    settle_pending(peer);
    s.pending_datagrams += peer.pending.count();
    s.pending_datagram_bytes += peer.pending.bytes();
  }
  s.host_datagram_handles = host_handles_.size();
  s.queue_pairs = broker_.count();
  s.doorbells = doorbells_.count();
  s.doorbells_rung = doorbells_rung_;
  s.ring_channels = ring_channels_.channel_count();
  s.ring_grants = ring_channels_.slot_count();
  for (const auto& [key, memory] : qp_memory_) s.queue_pair_bytes += memory->size();
  s.datagrams_routed = datagrams_routed_;
  s.events_sent = events_sent_;
  return s;
}

namespace {

std::string state_text(QpState state) {
  switch (state) {
    case QpState::kCreatedNoMem:
      return "created-no-mem";
    case QpState::kCreatedMem:
      return "created-mem";
    case QpState::kAttachedNoMem:
      return "attached-no-mem";
    case QpState::kAttachedMem:
      return "attached-mem";
    case QpState::kShutdownNoMem:
      return "shutdown-no-mem";
    case QpState::kShutdownMem:
      return "shutdown-mem";
  }
  return "unknown";
}

}  // namespace

Introspection Hypervisor::introspect() const {
  Introspection snap;
  snap.version = VMCI_VERSION;
  snap.protocol = std::to_string(proto::kProtocolMajor) + "." + std::to_string(proto::kProtocolMinor);
  snap.started_unix_ms = started_unix_ms_;
  snap.now_unix_ms = unix_ms_now();
  snap.limits = {{"max_pending_datagram_bytes", limits_.max_pending_datagram_bytes},
                 {"max_host_datagram_handles", limits_.max_host_datagram_handles},
                 {"max_qp_memory_per_context", limits_.max_qp_memory_per_context},
                 {"max_queue_pairs_per_context", limits_.max_queue_pairs_per_context},
                 {"max_doorbells_per_context", limits_.max_doorbells_per_context}};
  snap.stats = stats();
  snap.connections_admitted = connections_admitted_;
  const RingChannels::Refusals& refused = ring_channels_.refusals();
  snap.ring_channel_refusals = {{"owner_channels", refused.owner_channels},
                                {"ringer_channels", refused.ringer_channels},
                                {"slots", refused.slots},
                                {"memory", refused.memory}};
  for (const auto& [status, count] : refusals_by_status_) {
    const std::string_view name = proto::status_name(status);
    snap.refusals_by_status[name.empty() ? std::to_string(status) : std::string(name)] += count;
  }
  for (const auto& [id, peer] : peers_) {
    ContextInfo c;
    c.connection = id;
    c.cid = peer.cid;
    c.role = peer.role;
    c.priv_flags = peer.priv_flags;
    c.pid = peer.pid;
    c.uid = peer.uid;
    c.since_unix_ms = peer.since_unix_ms;
    c.datagrams_sent = peer.datagrams_sent;
    c.bytes_sent = peer.bytes_sent;
    c.refused = peer.refused;
    c.datagrams_received = peer.datagrams_received;
    c.bytes_received = peer.bytes_received;
    settle_pending(peer);
    c.pending_datagrams = peer.pending.count();
    c.pending_bytes = peer.pending.bytes();
    c.deliveries_counted = peer.pending.counted();
    for (const auto& [event, count] : peer.events_received) {
      c.events_received[std::string(proto::event_name(event))] = count;
    }
    snap.contexts.push_back(std::move(c));
  }
  for (const QueuePairBroker::Entry& e : broker_.list()) {
    PairInfo p;
    p.handle = e.handle;
    p.flags = e.flags;
    p.state = state_text(e.state);
    p.creator_cid = e.creator.cid;
    p.creator_connection = e.creator.owner;
    if (e.has_attacher) {
      p.attacher_cid = e.attacher.cid;
      p.attacher_connection = e.attacher.owner;
    }
    // Sizes and memory are in guest view: the first queue is the guest
    // endpoint's produce queue, and the creator is that endpoint unless it
    // is the host.
    const bool creator_is_guest = !e.creator.is_host();
    QueueFill first{e.produce_size, 0}, second{e.consume_size, 0};
    if (auto memory = qp_memory_.find(proto::handle_key(e.handle)); memory != qp_memory_.end()) {
      p.guest_pages = memory->second->guest_pages();
      std::tie(first.used, second.used) = memory->second->fill(e.produce_size, e.consume_size);
    }
    p.creator_to_attacher = creator_is_guest ? first : second;
    p.attacher_to_creator = creator_is_guest ? second : first;
    snap.pairs.push_back(std::move(p));
  }
  for (const DoorbellTable::Entry& e : doorbells_.list()) {
    snap.doorbells.push_back({e.handle, e.owner.peer, e.owner.cid, e.index, e.priv_flags, e.rings,
                              ring_channels_.slots_for(e.handle)});
  }
  for (const auto& [resource, h] : host_handles_) {
    snap.handles.push_back(
        {h.handle, h.owner, h.flags, h.priv_flags, ring_channels_.slots_for(h.handle)});
  }
  return snap;
}

}  // namespace vmci::host
