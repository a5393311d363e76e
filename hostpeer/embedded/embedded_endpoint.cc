#include "embedded/embedded_endpoint.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "vmci/proto/datagram.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/proto/queue_pair_mapping.h"

namespace vmci::host {

EmbeddedEndpoint::EmbeddedEndpoint(LockedCore& core, std::shared_ptr<spdlog::logger> log,
                                   proto::LogRateLimitOptions drop_log)
    : core_(core),
      log_(std::move(log)),
      refusals_(
          [this](const proto::LogSuppressed& s) {
            log_->warn("host endpoint: {} more from context {} ({}) not logged, over {:.1f} s",
                       s.lines, s.peer,
                       proto::EndpointDatagramLanes::name(
                           static_cast<proto::EndpointDatagramLanes::Refusal>(s.reason)),
                       static_cast<double>(s.over_ns()) / 1e9);
          },
          drop_log) {
  if (!log_) {
    log_ = std::make_shared<spdlog::logger>("embedded",
                                            std::make_shared<spdlog::sinks::null_sink_mt>());
  }
  std::string error;
  notify_ = NotifyMemoryFile::create(&error);
  if (notify_) {
    inbox_.watch(0, notify_->wake_word());
  } else {
    log_->error("host endpoint: no doorbell notify memory: {}", error);
  }
  PeerHello hello;
  hello.pid = getpid();
  hello.uid = getuid();
  hello.role = proto::Role::kHost;
  hello.trusted_for_host = true;
  hello.takes_host_lanes = true;
  peer_ = core_.with([&](Hypervisor& c) { return c.admit(hello, this).peer; });
  thread_ = std::thread([this] { run_deliveries(); });
}

EmbeddedEndpoint::~EmbeddedEndpoint() {
  inbox_.stop();
  thread_.join();
  core_.with([&](Hypervisor& c) { c.remove(peer_); });
}

vmci_id EmbeddedEndpoint::get_context_id() { return VMCI_HOST_CONTEXT_ID; }

int EmbeddedEndpoint::datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                             DatagramCallback callback, vmci_handle* out) {
  if (out == nullptr || !callback) return VMCI_ERROR_INVALID_ARGS;
  auto shared = std::make_shared<DatagramCallback>(std::move(callback));
  // The callback is registered under the core's lock, before any datagram
  // to the new handle can be routed.
  const HandleResult r = core_.with([&](Hypervisor& c) {
    HandleResult result = c.create_host_handle(peer_, resource, flags, priv_flags);
    if (result.status >= VMCI_SUCCESS) {
      std::lock_guard lock(mutex_);
      callbacks_[result.handle.resource] = shared;
    }
    return result;
  });
  if (r.status >= VMCI_SUCCESS) *out = r.handle;
  return r.status;
}

int EmbeddedEndpoint::datagram_destroy_handle(vmci_handle handle) {
  // The callback goes under the core's lock together with the handle, so a
  // handle created again with the same id at once keeps its own callback.
  const void* callback = nullptr;
  const int status = core_.with([&](Hypervisor& c) {
    const int result = c.destroy_host_handle(peer_, handle).status;
    if (result >= VMCI_SUCCESS) {
      std::lock_guard lock(mutex_);
      auto it = callbacks_.find(handle.resource);
      if (it != callbacks_.end()) {
        callback = it->second.get();
        callbacks_.erase(it);
      }
    }
    return result;
  });
  if (status < VMCI_SUCCESS || callback == nullptr || on_delivery_thread()) return status;
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return running_ != callback; });
  return status;
}

int EmbeddedEndpoint::datagram_send(const vmci_datagram* dg) {
  if (dg == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (dg->payload_size > VMCI_MAX_DG_SIZE || VMCI_DG_SIZE(dg) > VMCI_MAX_DG_SIZE) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(dg);
  // To a guest, through the lane hostpeer granted for this (source, guest)
  // once it routed one (the source context filled in as its routing does).
  if (VMCI_CONTEXT_IS_VM(dg->dst.context)) {
    vmci_datagram header = *dg;
    if (header.src.context == VMCI_INVALID_ID) header.src.context = VMCI_HOST_CONTEXT_ID;
    const std::span payload(bytes + sizeof(vmci_datagram), static_cast<size_t>(dg->payload_size));
    if (const std::optional<int> result = host_lanes_.send_result(header, payload)) return *result;
  }
  const std::span<const uint8_t> datagram(bytes, VMCI_DG_SIZE(dg));
  return static_cast<int>(core_.with([&](Hypervisor& c) { return c.send(peer_, datagram); }));
}

int EmbeddedEndpoint::event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) {
  std::lock_guard lock(mutex_);
  return subscriptions_.subscribe(event, std::move(callback), sub_id);
}

int EmbeddedEndpoint::event_unsubscribe(vmci_id sub_id) {
  std::unique_lock lock(mutex_);
  const int status = subscriptions_.unsubscribe(sub_id);
  if (status == VMCI_SUCCESS && !on_delivery_thread()) {
    // Waits while an event is being dispatched (running_ is then the
    // table), so no callback of this subscription runs after the return.
    changed_.wait(lock, [&] { return running_ != &subscriptions_; });
  }
  return status;
}

int EmbeddedEndpoint::qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                                  uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                                  uint32_t flags, uint32_t priv_flags) {
  const int checked = proto::check_qpair_alloc(qpair != nullptr, handle != nullptr, produce_size,
                                               consume_size, flags);
  if (checked != VMCI_SUCCESS) return checked;
  std::string error;
  std::unique_ptr<QueuePair> mapped;
  // Mapped under the core's lock, so that the guest's pages cannot be
  // handed over (queue_pair_memory) before the mapping is known.
  const QueuePairReply r = core_.with([&](Hypervisor& c) {
    QueuePairReply reply = c.qpair_alloc(
        peer_, QpAllocRequest{*handle, peer, flags, priv_flags, produce_size, consume_size});
    if (reply.status < VMCI_SUCCESS) return reply;
    std::vector<proto::MemoryExtent> extents;
    for (const QueueExtent& e : reply.memory->extents()) {
      extents.push_back(proto::MemoryExtent{e.file->get(), e.offset, e.size});
    }
    std::shared_ptr<proto::HostQueueMemory> memory;
    mapped = proto::map_host_queue_pair(reply.handle, extents, reply.memory->status_mapping(),
                                        produce_size, consume_size, &error, &memory);
    if (mapped) {
      std::erase_if(host_memory_, [](const auto& entry) { return entry.second.expired(); });
      host_memory_[proto::handle_key(reply.handle)] = memory;
    }
    return reply;
  });
  if (r.status < VMCI_SUCCESS) return r.status;
  if (!mapped) {
    log_->error("host endpoint: queue pair {}: {}", proto::to_string(r.handle), error);
    core_.with([&](Hypervisor& c) { return c.qpair_detach(peer_, r.handle); });
    return VMCI_ERROR_NO_RESOURCES;
  }
  *handle = r.handle;
  qp_watches_.add(r.handle, mapped->peer_watch());
  *qpair = std::move(mapped);
  return r.status;
}

void EmbeddedEndpoint::queue_pair_memory(vmci_handle handle,
                                         std::shared_ptr<const QueuePairMemory> memory) {
  auto it = host_memory_.find(proto::handle_key(handle));
  std::shared_ptr<proto::HostQueueMemory> mapping =
      it == host_memory_.end() ? nullptr : it->second.lock();
  if (!mapping) return;  // the pair is detached here already
  std::vector<proto::MemoryExtent> extents;
  for (const QueueExtent& e : memory->extents()) {
    extents.push_back(proto::MemoryExtent{e.file->get(), e.offset, e.size});
  }
  std::string error;
  if (!mapping->adopt(extents, &error)) {
    log_->error("host endpoint: queue pair {}: the guest's pages: {}", proto::to_string(handle),
                error);
  }
}

int EmbeddedEndpoint::qpair_detach(std::unique_ptr<QueuePair>* qpair) {
  if (qpair == nullptr || !*qpair) return VMCI_ERROR_INVALID_ARGS;
  const vmci_handle handle = (*qpair)->handle();
  if (on_delivery_thread()) {
    unmap_after_callback_.push_back(std::move(*qpair));
  } else {
    qpair->reset();
  }
  return core_.with([&](Hypervisor& c) { return c.qpair_detach(peer_, handle); });
}

void EmbeddedEndpoint::hold_callbacks() { inbox_.hold(); }

void EmbeddedEndpoint::release_callbacks() { inbox_.release(); }

void EmbeddedEndpoint::deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) {
  inbox_.push({delivery_id, std::move(datagram)});
}

void EmbeddedEndpoint::ring(uint64_t index) {
  if (notify_) notify_->ring(index);  // wakes the delivery thread if it sleeps
}

void EmbeddedEndpoint::grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
                             bool first) {
  // As a ringer only for its datagrams to guests: it rings doorbells
  // through the core, never a channel.
  const std::shared_ptr<proto::RingChannel>& channel = memory.channel();
  if (static_cast<proto::RingSide>(grant.side) == proto::RingSide::kRinger) {
    host_lanes_.add(grant, first ? channel : nullptr);
    return;
  }
  if (first && !inbox_.watch(grant.channel_id, {channel, &channel->wake})) return;
  if (static_cast<proto::SlotKind>(grant.kind) == proto::SlotKind::kDatagram) {
    lanes_.grant_in_turn(inbox_, grant, channel);
    return;
  }
  // A ring that came before the grant waits in its slot: look again.
  if (doorbells_.add_grant(grant.handle, grant.channel_id, channel, grant.slot,
                           grant.generation)) {
    inbox_.rescan();
  }
}

void EmbeddedEndpoint::close_ring_channel(uint32_t channel_id, proto::RingSide side) {
  if (side == proto::RingSide::kRinger) {
    host_lanes_.close_channel(channel_id);
    return;
  }
  doorbells_.drop_channel(channel_id);
  // What its lane still holds goes to the callbacks first; then what was
  // counted and not logged of its ringer is.
  lanes_.close_in_turn(
      inbox_, channel_id, [this](std::vector<uint8_t>& datagram) { dispatch(datagram); },
      [this](vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
             const std::string& why) { refused(ringer_cid, reason, why); },
      [this](vmci_id ringer_cid) { refusals_.forget(ringer_cid); });
  inbox_.unwatch(channel_id);
}

int EmbeddedEndpoint::doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                                      DoorbellCallback callback) {
  const int checked =
      proto::check_doorbell_create(handle != nullptr, bool(callback), flags, priv_flags);
  if (checked != VMCI_SUCCESS) return checked;
  if (!notify_) return VMCI_ERROR_NO_RESOURCES;
  if (!proto::is_invalid(*handle) && handle->context != VMCI_HOST_CONTEXT_ID) {
    return VMCI_ERROR_INVALID_ARGS;  // a host doorbell is in context 2
  }
  const uint64_t index = doorbells_.reserve_index();
  // Registered under the core's lock, before any ring can reach it.
  const HandleResult r = core_.with([&](Hypervisor& c) {
    HandleResult result = c.create_host_doorbell(
        peer_, proto::is_invalid(*handle) ? VMCI_INVALID_ID : handle->resource, priv_flags, index);
    if (result.status >= VMCI_SUCCESS) {
      doorbells_.insert(result.handle, index, std::move(callback));
      doorbells_.activate(result.handle);
    }
    return result;
  });
  if (r.status < VMCI_SUCCESS) {
    doorbells_.release_index(index);
    return r.status;
  }
  *handle = r.handle;
  return VMCI_SUCCESS;
}

int EmbeddedEndpoint::doorbell_destroy(vmci_handle handle) {
  if (proto::is_invalid(handle)) return VMCI_ERROR_INVALID_ARGS;
  const int status = core_.with([&](Hypervisor& c) { return c.destroy_host_doorbell(peer_, handle); });
  if (status < VMCI_SUCCESS) return status;
  return doorbells_.remove(handle, on_delivery_thread());
}

int EmbeddedEndpoint::doorbell_notify(vmci_handle handle, uint32_t priv_flags) {
  if (proto::is_invalid(handle) || (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  return core_.with([&](Hypervisor& c) { return c.notify_doorbell(peer_, handle, priv_flags); });
}

bool EmbeddedEndpoint::on_delivery_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void EmbeddedEndpoint::run_deliveries() {
  const auto deliver = [this](std::vector<uint8_t>& datagram) { dispatch(datagram); };
  const auto refused = [this](vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
                              const std::string& why) { this->refused(ringer_cid, reason, why); };
  for (;;) {
    proto::EndpointInbox::Next next = inbox_.next();
    switch (next.kind) {
      case proto::EndpointInbox::Kind::kStopped:
        return;
      case proto::EndpointInbox::Kind::kScan:
        if (notify_) {
          for (const auto& rung : doorbells_.take_rung(notify_->memory())) doorbells_.run(rung);
        }
        if (lanes_.drain(proto::kLaneDrainShare, deliver, refused).more) inbox_.rescan();
        break;
      case proto::EndpointInbox::Kind::kAction:
        next.action();
        break;
      case proto::EndpointInbox::Kind::kDelivery:
        // No longer pending once taken for its callback (as the guest driver).
        core_.with([&](Hypervisor& c) { c.delivered(peer_, next.delivery.id); });
        // First what the lanes hold that was sent before it (as the guest
        // driver).
        lanes_.drain_before_delivery(deliver, refused);
        dispatch(next.delivery.datagram);
        if (lanes_.delivery_taken()) inbox_.rescan();
        break;
    }
    unmap_after_callback_.clear();
  }
}

void EmbeddedEndpoint::refused(vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
                               const std::string& why) {
  refusals_.write(ringer_cid, static_cast<uint32_t>(reason),
                  [&] { log_->warn("host endpoint: {}", why); });
}

void EmbeddedEndpoint::dispatch(std::vector<uint8_t>& datagram) {
  auto* dg = reinterpret_cast<vmci_datagram*>(datagram.data());
  if (proto::is_event_datagram(*dg)) {
    if (const int status = proto::check_event_datagram(datagram); status != VMCI_SUCCESS) {
      log_->warn("host endpoint: malformed event datagram ({} bytes) dropped: {}",
                 datagram.size(), proto::describe_result(status));
      return;
    }
    vmci_event_data_max event{};
    std::memcpy(&event, datagram.data() + sizeof(vmci_datagram),
                static_cast<size_t>(dg->payload_size));
    if (event.event_data.event == VMCI_EVENT_QP_PEER_DETACH && dg->payload_size >= 20) {
      qp_watches_.peer_gone(event.ev_data_payload.qp_payload.handle);
    }
    std::vector<proto::EventSubscriptions::Subscriber> subscribers;
    {
      std::lock_guard lock(mutex_);
      subscribers = subscriptions_.subscribers(event.event_data.event);
      running_ = &subscriptions_;
    }
    for (auto& s : subscribers) {
      {
        std::lock_guard lock(mutex_);
        if (!subscriptions_.contains(s.id)) continue;
      }
      vmci_event_data_max copy = event;
      s.callback(s.id, &copy.event_data);
    }
  } else {
    std::shared_ptr<DatagramCallback> callback;
    {
      std::lock_guard lock(mutex_);
      auto it = callbacks_.find(dg->dst.resource);
      if (it != callbacks_.end()) {
        callback = it->second;
        running_ = callback.get();
      }
    }
    if (callback) {
      (*callback)(dg);
    } else {  // destroyed meanwhile; the sender was told it was queued (spec §3.6)
      log_->debug("host endpoint: datagram for {} dropped: no such handle",
                  proto::to_string(dg->dst));
    }
  }
  {
    std::lock_guard lock(mutex_);
    running_ = nullptr;
  }
  changed_.notify_all();
}

}  // namespace vmci::host
