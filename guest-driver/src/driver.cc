#include "vmci/guest/driver.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "connection.h"
#include "datagram_handles.h"
#include "delivery_acknowledger.h"
#include "delivery_queue.h"
#include "guest_queue_pairs.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/endpoint_datagram_lanes.h"
#include "vmci/proto/endpoint_doorbells.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/log_rate_limit.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/proto/queue_pair_mapping.h"
#include "vmci/proto/ringer_grants.h"
#include "vmci/trace/traced_endpoint.h"

namespace vmci::guest {
namespace {

// What every connection of this driver asks hostpeer for (frame.h).
constexpr uint8_t kFeatures = proto::kFeatureHostLanes | proto::kFeatureCountedDeliveries;

}  // namespace

struct Driver::Impl {
  explicit Impl(const ConnectOptions& o) : role(o.role), options(o) {}

  // What the reader thread of a connection reports to; its deliveries are
  // acknowledged through `acks`, bound to it once open.
  internal::Connection::Sink make_sink(std::shared_ptr<internal::DeliveryAcknowledger> acks);
  // The connection ended (reader thread): what it held here goes; the
  // program is told unless it closed it itself; a reconnect starts if asked.
  void lost(const std::string& reason);
  // Runs the connection callback on the delivery thread, after what came before.
  void tell(ConnectionChange change);
  // The reconnect thread (host connections that asked for it).
  void reconnect_loop();
  // Re-creates this endpoint's host datagram handles and doorbells over
  // `fresh`; says what could not be ("" if all).
  std::string restore(internal::Connection& fresh);
  void stop_reconnecting();

  void handle_delivery(internal::Delivery& delivery);
  void deliver_event(std::vector<uint8_t>& datagram);
  void deliver_datagram(std::vector<uint8_t>& datagram);
  int create_host_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                         DatagramCallback callback, vmci_handle* out);
  // The delivery thread's scan: runs the callbacks of the doorbells rung,
  // and of the datagrams waiting in the lanes this endpoint owns.
  void scan();
  // What the lanes hand over goes to deliver_datagram; what they drop, to
  // report_dropped.
  proto::EndpointDatagramLanes::Deliver lane_deliver();
  proto::EndpointDatagramLanes::Refused lane_dropped();
  void ring_grant(const proto::RingGrantBody& grant, std::shared_ptr<proto::RingChannel> channel);
  void ring_channel_closed(const proto::RingChannelClosedBody& closed);
  // What a lane's owner dropped, and why (a hostile or broken ringer), to
  // stderr: at most a burst per ringer and reason, then a count.
  void report_dropped(vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
                      const std::string& why);
  int host_qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                       uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                       uint32_t flags, uint32_t priv_flags);
  // A kQueuePairMemory frame (reader thread): mapped over the pair now if
  // it is mapped here, else kept for the alloc whose result follows.
  void queue_pair_memory(std::shared_ptr<internal::QueuePairMemoryFrame> memory);
  // Maps a memory frame over `mapping`; false (logged) if it cannot be.
  static bool adopt(proto::HostQueueMemory& mapping, const internal::QueuePairMemoryFrame& memory);

  // The id this context has now: the cached one once known, else the one
  // the handshake gave.
  vmci_id own_cid() const {
    return context_id_known ? cached_context_id.load() : conn()->context_id();
  }
  // A round trip to hostpeer: every frame it sent before has been read when
  // this returns (Driver::sync).
  int sync() const {
    const proto::DeliveredBody body{};
    return static_cast<int>(
        conn()->request(proto::FrameType::kSync, proto::body_bytes(body)).result);
  }

  const proto::Role role;
  const ConnectOptions options;
  std::atomic<bool> own_close{false};  // ~Driver or abort() began
  std::mutex callback_mutex;
  ConnectionCallback on_change;
  std::mutex reconnect_mutex;  // guards the three below
  std::condition_variable reconnect_changed;
  bool reconnect_wanted = false;
  bool stopping = false;
  std::thread reconnector;
  std::vector<std::shared_ptr<proto::NotifyWakeWord>> retired_notify;  // reconnect thread only
  // Host connections: what restore() re-creates, by handle key.
  struct HostHandle {
    vmci_id resource;
    uint32_t flags;
    uint32_t priv_flags;
    uint64_t index;  // doorbells: the notify index
  };
  std::mutex restorable_mutex;
  std::map<uint64_t, HostHandle> host_handles;
  std::map<uint64_t, HostHandle> host_doorbells;
  // Guests: the context id as the last VMCI_GET_CONTEXT_ID answered it, kept
  // verbatim, or as CTX_ID_UPDATE changed it (spec §1.5).
  std::atomic<vmci_id> cached_context_id{VMCI_INVALID_ID};
  std::atomic<bool> context_id_known{false};
  internal::DatagramHandles handles;
  std::mutex subscriptions_mutex;  // guards the two below
  proto::EventSubscriptions subscriptions;
  vmci_id running_subscription = 0;  // whose callback runs now; 0: none
  std::condition_variable subscription_done;
  // Torn down by ~Driver in order: deliveries stop, then the connection goes.
  std::unique_ptr<internal::DeliveryQueue> deliveries;
  // Where deliveries are acknowledged: the connection they came from
  // (delivery thread only; set by each connection's first queued action).
  std::shared_ptr<internal::DeliveryAcknowledger> acknowledging;
  // The connection now; a reconnect replaces it (conn() takes a reference).
  mutable std::mutex connection_mutex;
  std::shared_ptr<internal::Connection> connection;
  std::mutex introspection_mutex;  // hostpeer_introspection's pieces, one snapshot at a time
  std::shared_ptr<internal::Connection> conn() const {
    std::lock_guard lock(connection_mutex);
    return connection;
  }
  std::unique_ptr<internal::GuestQueuePairs> queue_pairs;  // guests only
  proto::EndpointDoorbells doorbells;
  proto::EndpointDatagramLanes lanes;  // host connections: datagrams from guests
  proto::LogRateLimit dropped_log{[](const proto::LogSuppressed& s) {
    std::fprintf(stderr,
                 "vmci: dropped: %llu more from context %llu (%s) not reported, over %.1f s\n",
                 static_cast<unsigned long long>(s.lines), static_cast<unsigned long long>(s.peer),
                 proto::EndpointDatagramLanes::name(
                     static_cast<proto::EndpointDatagramLanes::Refusal>(s.reason)),
                 static_cast<double>(s.over_ns()) / 1e9);
  }};
  std::atomic<proto::NotifyMemory*> notify{nullptr};  // once connected
  proto::RingerGrants ring_grants;                    // as a ringer
  std::mutex owned_channels_mutex;
  std::map<uint32_t, std::shared_ptr<proto::RingChannel>> owned_channels;  // as an owner, by id
  // Host connections: the pairs' mappings, and memory frames not yet
  // taken by a mapping, by handle key.
  std::mutex host_memory_mutex;  // guards the two below
  std::map<uint64_t, std::weak_ptr<proto::HostQueueMemory>> host_memory;
  std::map<uint64_t, std::shared_ptr<internal::QueuePairMemoryFrame>> host_memory_frames;
  std::atomic<uint64_t> rung_direct{0}, rung_direct_woke{0}, rung_through_hostpeer{0};
  QueuePairWatches qp_watches;  // the pairs' waiters, told when a peer goes
  // The calls: `direct` itself, or `traced` in front of it (VMCI_TRACE).
  std::unique_ptr<Direct> direct;
  std::unique_ptr<trace::TracedEndpoint> traced;
  Endpoint* calls = nullptr;
};

// The Endpoint calls as this driver carries them out.
class Driver::Direct final : public Endpoint {
 public:
  explicit Direct(Impl* impl) : impl_(impl) {}
  vmci_id get_context_id() override;
  int datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                             DatagramCallback callback, vmci_handle* out) override;
  int datagram_destroy_handle(vmci_handle handle) override;
  int datagram_send(const vmci_datagram* dg) override;
  int event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) override;
  int event_unsubscribe(vmci_id sub_id) override;
  int qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle, uint64_t produce_size,
                  uint64_t consume_size, vmci_id peer, uint32_t flags,
                  uint32_t priv_flags) override;
  int qpair_detach(std::unique_ptr<QueuePair>* qpair) override;
  int doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                      DoorbellCallback callback) override;
  int doorbell_destroy(vmci_handle handle) override;
  int doorbell_notify(vmci_handle handle, uint32_t priv_flags) override;
  void hold_callbacks() override;
  void release_callbacks() override;
  bool connected() const override { return impl_->conn()->alive(); }

 private:
  Impl* const impl_;
};

void Driver::Impl::report_dropped(vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
                                  const std::string& why) {
  dropped_log.write(ringer_cid, static_cast<uint32_t>(reason),
                    [&] { std::fprintf(stderr, "vmci: dropped: %s\n", why.c_str()); });
}

void Driver::Impl::scan() {
  if (proto::NotifyMemory* memory = notify.load()) {
    for (const auto& rung : doorbells.take_rung(memory)) doorbells.run(rung);
  }
  if (lanes.drain(proto::kLaneDrainShare, lane_deliver(), lane_dropped()).more) {
    deliveries->inbox().rescan();
  }
}

proto::EndpointDatagramLanes::Deliver Driver::Impl::lane_deliver() {
  return [this](std::vector<uint8_t>& datagram) { deliver_datagram(datagram); };
}

proto::EndpointDatagramLanes::Refused Driver::Impl::lane_dropped() {
  return [this](vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
                const std::string& why) { report_dropped(ringer_cid, reason, why); };
}

void Driver::Impl::ring_grant(const proto::RingGrantBody& grant,
                              std::shared_ptr<proto::RingChannel> channel) {
  if (static_cast<proto::RingSide>(grant.side) == proto::RingSide::kRinger) {
    ring_grants.add(grant, std::move(channel));
    return;
  }
  {
    std::lock_guard lock(owned_channels_mutex);
    if (channel) {
      owned_channels[grant.channel_id] = channel;
      deliveries->inbox().watch(grant.channel_id, {channel, &channel->wake});
    } else if (auto it = owned_channels.find(grant.channel_id); it != owned_channels.end()) {
      channel = it->second;
    } else {
      return;
    }
  }
  if (static_cast<proto::SlotKind>(grant.kind) == proto::SlotKind::kDatagram ||
      static_cast<proto::SlotKind>(grant.kind) == proto::SlotKind::kDatagramFromHost) {
    lanes.grant_in_turn(deliveries->inbox(), grant, std::move(channel));
    return;
  }
  // A ring that came before the grant waits in its slot: look again.
  if (doorbells.add_grant(grant.handle, grant.channel_id, std::move(channel), grant.slot,
                          grant.generation)) {
    deliveries->inbox().rescan();
  }
}

void Driver::Impl::ring_channel_closed(const proto::RingChannelClosedBody& closed) {
  if (static_cast<proto::RingSide>(closed.side) == proto::RingSide::kRinger) {
    ring_grants.close_channel(closed.channel_id);
    return;
  }
  doorbells.drop_channel(closed.channel_id);
  // What its lane still holds goes to the callbacks first; then what was
  // counted and not reported of its ringer is.
  lanes.close_in_turn(
      deliveries->inbox(), closed.channel_id,
      [this](std::vector<uint8_t>& dg) { deliver_datagram(dg); },
      [this](vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
             const std::string& why) { report_dropped(ringer_cid, reason, why); },
      [this](vmci_id ringer_cid) { dropped_log.forget(ringer_cid); });
  deliveries->inbox().unwatch(closed.channel_id);
  std::lock_guard lock(owned_channels_mutex);
  owned_channels.erase(closed.channel_id);
}

void Driver::Impl::handle_delivery(internal::Delivery& delivery) {
  // No longer pending once taken for its callback: the acknowledgement goes
  // out before the callback runs, so whatever the callback lets others do
  // next reaches hostpeer after it. (Id 0: a local event, not from hostpeer.)
  if (delivery.id != 0) {
    acknowledging->acknowledge(delivery.id);
    lanes.drain_before_delivery(lane_deliver(), lane_dropped());
  }
  const vmci_datagram header = proto::header_of(delivery.datagram);
  if (proto::is_event_datagram(header)) {
    deliver_event(delivery.datagram);
  } else {
    deliver_datagram(delivery.datagram);
  }
  if (delivery.id != 0 && lanes.delivery_taken()) deliveries->inbox().rescan();
}

void Driver::Impl::deliver_event(std::vector<uint8_t>& datagram) {
  if (proto::check_event_datagram(datagram) != VMCI_SUCCESS) return;  // dropped, as drivers do
  vmci_event_data_max event{};
  const size_t payload_size = datagram.size() - proto::kDatagramHeaderSize;
  std::memcpy(&event, datagram.data() + proto::kDatagramHeaderSize, payload_size);
  const uint32_t type = event.event_data.event;
  if (type == VMCI_EVENT_QP_PEER_DETACH && payload_size >= 20) {
    qp_watches.peer_gone(event.ev_data_payload.qp_payload.handle);
  }
  if (type == VMCI_EVENT_CTX_ID_UPDATE && payload_size >= 12 &&
      event.ev_data_payload.context_payload.context_id != VMCI_INVALID_ID) {
    cached_context_id = event.ev_data_payload.context_payload.context_id;
    context_id_known = true;
  }
  std::vector<proto::EventSubscriptions::Subscriber> subscribers;
  {
    std::lock_guard lock(subscriptions_mutex);
    subscribers = subscriptions.subscribers(type);
  }
  for (auto& subscriber : subscribers) {
    {
      std::lock_guard lock(subscriptions_mutex);
      if (!subscriptions.contains(subscriber.id)) continue;  // unsubscribed meanwhile
      running_subscription = subscriber.id;
    }
    vmci_event_data_max copy = event;  // each subscriber gets its own buffer (FreeBSD)
    subscriber.callback(subscriber.id, &copy.event_data);
    {
      std::lock_guard lock(subscriptions_mutex);
      running_subscription = 0;
    }
    subscription_done.notify_all();
  }
}

void Driver::Impl::deliver_datagram(std::vector<uint8_t>& datagram) {
  auto* dg = reinterpret_cast<vmci_datagram*>(datagram.data());
  auto entry = handles.lookup(dg->dst);
  if (!entry) return;  // no such handle here: dropped silently (spec §3.6)
  handles.start_callback(entry);
  entry->callback(dg);
  handles.finish_callback();
}

Driver::Driver() = default;

Driver::~Driver() {
  if (!impl_) return;
  impl_->own_close = true;
  impl_->stop_reconnecting();
  impl_->traced.reset();  // writes the trace's "close" line
  impl_->deliveries->stop();  // a running callback finishes; nothing more is delivered
  impl_->connection.reset();  // closes the socket, joins the reader
  impl_->deliveries.reset();
}

internal::Connection::Sink Driver::Impl::make_sink(
    std::shared_ptr<internal::DeliveryAcknowledger> acks) {
  // hostpeer counts its deliveries per connection: a new one starts at 0,
  // after what the last one delivered, and is acknowledged anew.
  deliveries->inbox().push_action([this, acks = std::move(acks)] {
    lanes.restart_delivery_count();
    acknowledging = acks;
  });
  internal::Connection::Sink sink;
  sink.deliver = [this](uint32_t id, std::vector<uint8_t> dg) {
    deliveries->push(internal::Delivery{id, std::move(dg)});
  };
  sink.closed = [this](const std::string& reason) { lost(reason); };
  sink.ring_grant = [this](const proto::RingGrantBody& grant,
                           std::shared_ptr<proto::RingChannel> channel) {
    ring_grant(grant, std::move(channel));
  };
  sink.ring_channel_closed = [this](const proto::RingChannelClosedBody& closed) {
    ring_channel_closed(closed);
  };
  sink.queue_pair_memory = [this](std::shared_ptr<internal::QueuePairMemoryFrame> memory) {
    queue_pair_memory(std::move(memory));
  };
  return sink;
}

void Driver::Impl::lost(const std::string& reason) {
  ring_grants.clear();
  qp_watches.all_gone();
  // The channels this endpoint owned went with hostpeer, as if it had said so.
  std::vector<uint32_t> owned;
  {
    std::lock_guard lock(owned_channels_mutex);
    for (const auto& [id, channel] : owned_channels) owned.push_back(id);
  }
  for (uint32_t id : owned) {
    ring_channel_closed(proto::RingChannelClosedBody{
        id, static_cast<uint8_t>(proto::RingSide::kOwner), {}});
  }
  if (own_close) return;
  tell(ConnectionChange{ConnectionChange::Kind::kLost, reason});
  if (options.reconnect.enabled && role == proto::Role::kHost) {
    std::lock_guard lock(reconnect_mutex);
    reconnect_wanted = true;
    reconnect_changed.notify_all();
  }
}

void Driver::Impl::tell(ConnectionChange change) {
  ConnectionCallback callback;
  {
    std::lock_guard lock(callback_mutex);
    callback = on_change;
  }
  if (!callback) return;
  deliveries->inbox().push_action(
      [callback = std::move(callback), change = std::move(change)] { callback(change); });
}

void Driver::Impl::reconnect_loop() {
  std::unique_lock lock(reconnect_mutex);
  for (;;) {
    reconnect_changed.wait(lock, [&] { return stopping || reconnect_wanted; });
    if (stopping) return;
    reconnect_wanted = false;
    auto delay = options.reconnect.first_delay;
    for (;;) {
      if (reconnect_changed.wait_for(lock, delay, [&] { return stopping; })) return;
      lock.unlock();
      int status = VMCI_ERROR_UNAVAILABLE;
      std::string error;
      auto acks = std::make_shared<internal::DeliveryAcknowledger>();
      std::shared_ptr<internal::Connection> fresh =
          internal::Connection::open(options, make_sink(acks), &status, &error, kFeatures);
      if (fresh) {
        acks->bind(fresh);
        // In place at once, so that deliveries are acknowledged to it.
        std::shared_ptr<internal::Connection> old;
        {
          std::lock_guard swap(connection_mutex);
          old = std::exchange(connection, fresh);
        }
        // The delivery thread may still be reading the old notify memory:
        // it stays mapped while the Driver lives.
        retired_notify.push_back(old->notify_wake_word());
        notify = fresh->notify_memory();
        deliveries->inbox().watch(0, fresh->notify_wake_word());
        old.reset();  // its reader ended with it
        const std::string not_restored = restore(*fresh);
        tell(ConnectionChange{ConnectionChange::Kind::kReconnected, not_restored});
        lock.lock();
        break;
      }
      lock.lock();
      delay = std::min(delay * 2, options.reconnect.max_delay);
    }
  }
}

std::string Driver::Impl::restore(internal::Connection& fresh) {
  std::string not_restored;
  const auto note = [&](const std::string& what, int64_t status) {
    if (!not_restored.empty()) not_restored += "; ";
    not_restored += what + ": " + proto::describe_result(status);
  };
  std::map<uint64_t, HostHandle> handles_now, doorbells_now;
  {
    std::lock_guard lock(restorable_mutex);
    handles_now = host_handles;
    doorbells_now = host_doorbells;
  }
  for (const auto& [key, h] : handles_now) {
    const proto::HandleCreateBody body{h.resource, h.flags, h.priv_flags, 0};
    const auto reply = fresh.request(proto::FrameType::kHandleCreate, proto::body_bytes(body));
    if (reply.result < VMCI_SUCCESS) {
      note("datagram handle " + proto::to_string(proto::handle_from_key(key)), reply.result);
      handles.remove(proto::handle_from_key(key), false);
      std::lock_guard lock(restorable_mutex);
      host_handles.erase(key);
    }
  }
  for (const auto& [key, d] : doorbells_now) {
    const proto::DoorbellCreateBody body{d.resource, d.priv_flags, d.index};
    const auto reply = fresh.request(proto::FrameType::kDoorbellCreate, proto::body_bytes(body));
    if (reply.result < VMCI_SUCCESS) {
      note("doorbell " + proto::to_string(proto::handle_from_key(key)), reply.result);
      uint64_t index = 0;
      if (doorbells.remove(proto::handle_from_key(key), false, &index) == VMCI_SUCCESS) {
        doorbells.release_index(index);
      }
      std::lock_guard lock(restorable_mutex);
      host_doorbells.erase(key);
    }
  }
  deliveries->inbox().rescan();
  return not_restored;
}

void Driver::Impl::stop_reconnecting() {
  {
    std::lock_guard lock(reconnect_mutex);
    stopping = true;
    reconnect_changed.notify_all();
  }
  if (reconnector.joinable()) reconnector.join();
}

void Driver::set_connection_callback(ConnectionCallback callback) {
  std::lock_guard lock(impl_->callback_mutex);
  impl_->on_change = std::move(callback);
}

std::unique_ptr<Driver> Driver::connect(const ConnectOptions& options, int* status,
                                        std::string* error) {
  int local_status;
  if (status == nullptr) status = &local_status;
  std::unique_ptr<Driver> driver(new Driver());
  driver->impl_ = std::make_unique<Impl>(options);
  Impl* impl = driver->impl_.get();
  impl->deliveries = std::make_unique<internal::DeliveryQueue>(
      [impl](internal::Delivery& d) { impl->handle_delivery(d); },
      [impl] { impl->scan(); });
  auto acks = std::make_shared<internal::DeliveryAcknowledger>();
  internal::Connection::Sink sink = impl->make_sink(acks);
  // Deliveries wait until the connection is in place: the first may arrive
  // before open() returns.
  impl->deliveries->hold();
  impl->connection = internal::Connection::open(options, std::move(sink), status, error, kFeatures);
  if (!impl->connection) return nullptr;
  acks->bind(impl->connection);
  if (options.reconnect.enabled && options.role == proto::Role::kHost) {
    impl->reconnector = std::thread([impl] { impl->reconnect_loop(); });
  }
  // Before any doorbell exists, hence before any ring.
  impl->notify = impl->connection->notify_memory();
  impl->deliveries->inbox().watch(0, impl->connection->notify_wake_word());
  impl->deliveries->release();
  if (options.role == proto::Role::kHost) {
    impl->cached_context_id = VMCI_HOST_CONTEXT_ID;
    impl->context_id_known = true;
  } else {
    impl->queue_pairs = std::make_unique<internal::GuestQueuePairs>(
        [impl](const proto::Bytes& dg, const std::function<void()>& while_waiting) {
          return impl->conn()->request(proto::FrameType::kDatagram, dg, {}, {}, while_waiting);
        },
        [impl](vmci_event_type event, vmci_handle handle) {
          // Local events name this context as the peer (spec §7.4).
          const vmci_id cid = impl->own_cid();
          impl->deliveries->push(
              internal::Delivery{0, proto::make_queue_pair_event(cid, event, handle, cid)});
        });
  }
  impl->direct = std::make_unique<Direct>(impl);
  impl->calls = impl->direct.get();
  std::string trace_error;
  if (auto file = trace::trace_file_from_environment(&trace_error)) {
    impl->traced = std::make_unique<trace::TracedEndpoint>(
        *impl->direct, std::move(file),
        trace::EndpointIdentity{options.role, false, impl->connection->context_id(),
                                options.context_id, options.priv_flags});
    impl->calls = impl->traced.get();
  } else if (!trace_error.empty()) {
    std::fprintf(stderr, "vmci: VMCI_TRACE: %s; not tracing\n", trace_error.c_str());
  }
  return driver;
}

vmci_id Driver::get_context_id() { return impl_->calls->get_context_id(); }
int Driver::datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                   DatagramCallback callback, vmci_handle* out) {
  return impl_->calls->datagram_create_handle(resource, flags, priv_flags, std::move(callback),
                                              out);
}
int Driver::datagram_destroy_handle(vmci_handle handle) {
  return impl_->calls->datagram_destroy_handle(handle);
}
int Driver::datagram_send(const vmci_datagram* dg) { return impl_->calls->datagram_send(dg); }
int Driver::event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) {
  return impl_->calls->event_subscribe(event, std::move(callback), sub_id);
}
int Driver::event_unsubscribe(vmci_id sub_id) { return impl_->calls->event_unsubscribe(sub_id); }
int Driver::qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                        uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                        uint32_t flags, uint32_t priv_flags) {
  return impl_->calls->qpair_alloc(qpair, handle, produce_size, consume_size, peer, flags,
                                   priv_flags);
}
int Driver::qpair_detach(std::unique_ptr<QueuePair>* qpair) {
  return impl_->calls->qpair_detach(qpair);
}
int Driver::doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                            DoorbellCallback callback) {
  return impl_->calls->doorbell_create(handle, flags, priv_flags, std::move(callback));
}
int Driver::doorbell_destroy(vmci_handle handle) {
  return impl_->calls->doorbell_destroy(handle);
}
int Driver::doorbell_notify(vmci_handle handle, uint32_t priv_flags) {
  return impl_->calls->doorbell_notify(handle, priv_flags);
}
void Driver::hold_callbacks() { impl_->calls->hold_callbacks(); }
void Driver::release_callbacks() { impl_->calls->release_callbacks(); }

void Driver::abort() {
  impl_->own_close = true;
  impl_->stop_reconnecting();
  if (impl_->traced) impl_->traced->closed("kill");
  impl_->conn()->abort();
}

bool Driver::connected() const { return impl_->conn()->alive(); }

proto::Role Driver::role() const { return impl_->role; }

std::string Driver::close_reason() const { return impl_->conn()->close_reason(); }

vmci_id Driver::Direct::get_context_id() {
  if (impl_->context_id_known) return impl_->cached_context_id;
  // The lazy VMCI_GET_CONTEXT_ID hypercall; its result is cached verbatim.
  const proto::Bytes dg = proto::make_datagram(
      VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, VMCI_GET_CONTEXT_ID), VMCI_ANON_SRC_HANDLE, {});
  const auto result = impl_->conn()->request(proto::FrameType::kDatagram, dg);
  if (!impl_->conn()->alive() && result.result == VMCI_ERROR_UNAVAILABLE) {
    return VMCI_INVALID_ID;  // no hypervisor answered: nothing to cache
  }
  impl_->cached_context_id = static_cast<vmci_id>(result.result);
  impl_->context_id_known = true;
  return impl_->cached_context_id;
}

int Driver::Direct::datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                   DatagramCallback callback, vmci_handle* out) {
  if (out == nullptr || !callback || (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS) != 0) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  if (flags & VMCI_FLAG_WELLKNOWN_DG_HND) return VMCI_ERROR_INVALID_ARGS;
  if (impl_->role == proto::Role::kHost) {
    return impl_->create_host_handle(resource, flags, priv_flags, std::move(callback), out);
  }
  vmci_id context = VMCI_INVALID_ID;
  if (!(flags & VMCI_FLAG_ANYCID_DG_HND)) {
    context = impl_->own_cid();
    if (context == VMCI_INVALID_ID) return VMCI_ERROR_NO_RESOURCES;
  }
  return impl_->handles.create(context, resource, flags, priv_flags, std::move(callback), out);
}

int Driver::Impl::create_host_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                     DatagramCallback callback, vmci_handle* out) {
  const proto::HandleCreateBody body{resource, flags, priv_flags, 0};
  const auto bytes = proto::body_bytes(body);
  // The handle goes into the table before the caller wakes, so a datagram
  // that follows the result finds it.
  auto hook = [&](const proto::ResultBody& r) {
    if (r.result >= VMCI_SUCCESS) handles.insert(r.handle, flags, priv_flags, callback);
  };
  const auto result = conn()->request(proto::FrameType::kHandleCreate, bytes, hook);
  if (result.result >= VMCI_SUCCESS) {
    *out = result.handle;
    std::lock_guard lock(restorable_mutex);
    host_handles[proto::handle_key(result.handle)] =
        HostHandle{result.handle.resource, flags, priv_flags, 0};
  }
  return static_cast<int>(result.result);
}

int Driver::Direct::datagram_destroy_handle(vmci_handle handle) {
  const bool from_callback = impl_->deliveries->on_delivery_thread();
  if (impl_->role == proto::Role::kHost) {
    const proto::HandleDestroyBody body{handle};
    const auto result =
        impl_->conn()->request(proto::FrameType::kHandleDestroy,
                                   proto::body_bytes(body));
    if (result.result < VMCI_SUCCESS && result.result != VMCI_ERROR_UNAVAILABLE) {
      return static_cast<int>(result.result);
    }
    // Gone from hostpeer (or hostpeer is gone): forget the callback too,
    // under the handle as hostpeer stored it (its lookup has wildcards).
    const vmci_handle stored =
        result.result >= VMCI_SUCCESS ? result.handle : handle;
    {
      std::lock_guard lock(impl_->restorable_mutex);
      impl_->host_handles.erase(proto::handle_key(stored));
    }
    const int local = impl_->handles.remove(stored, from_callback);
    return result.result == VMCI_ERROR_UNAVAILABLE ? VMCI_ERROR_UNAVAILABLE : local;
  }
  return impl_->handles.remove(handle, from_callback);
}

int Driver::Direct::datagram_send(const vmci_datagram* dg) {
  if (dg == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (dg->payload_size > VMCI_MAX_DG_SIZE || VMCI_DG_SIZE(dg) > VMCI_MAX_DG_SIZE) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  vmci_datagram header = *dg;
  if (impl_->role == proto::Role::kGuest) {
    if (!impl_->handles.lookup(header.src)) return VMCI_ERROR_NO_HANDLE;
    // An any-context handle sends as this context (Linux's routing fills it in).
    if (header.src.context == VMCI_INVALID_ID) header.src.context = impl_->own_cid();
  }
  const auto* payload = reinterpret_cast<const uint8_t*>(dg) + sizeof(vmci_datagram);
  // Through a datagram lane if hostpeer granted one: to guests for host
  // datagram handles it routed to, to hosts for (source handle, guest)
  // pairs it routed between. A host's source context is filled in as
  // hostpeer's routing would.
  vmci_datagram lane_header = header;
  if (impl_->role == proto::Role::kHost && lane_header.src.context == VMCI_INVALID_ID) {
    lane_header.src.context = VMCI_HOST_CONTEXT_ID;
  }
  const bool lane_kind = impl_->role == proto::Role::kGuest
                             ? header.dst.context == VMCI_HOST_CONTEXT_ID
                             : VMCI_CONTEXT_IS_VM(header.dst.context);
  if (lane_kind) {
    const std::span body(payload, static_cast<size_t>(dg->payload_size));
    if (const std::optional<int> result = impl_->ring_grants.send_result(lane_header, body)) {
      return *result;
    }
  }
  const proto::Bytes bytes = proto::make_datagram(
      header.dst, header.src, std::span(payload, static_cast<size_t>(dg->payload_size)));
  return static_cast<int>(impl_->conn()->request(proto::FrameType::kDatagram, bytes).result);
}

int Driver::Direct::event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) {
  std::lock_guard lock(impl_->subscriptions_mutex);
  return impl_->subscriptions.subscribe(event, std::move(callback), sub_id);
}

int Driver::Direct::event_unsubscribe(vmci_id sub_id) {
  std::unique_lock lock(impl_->subscriptions_mutex);
  const int status = impl_->subscriptions.unsubscribe(sub_id);
  // As FreeBSD: wait for a running callback of it, unless that is the caller.
  if (status == VMCI_SUCCESS && !impl_->deliveries->on_delivery_thread()) {
    impl_->subscription_done.wait(lock, [&] { return impl_->running_subscription != sub_id; });
  }
  return status;
}

int Driver::sync() { return impl_->sync(); }

int Driver::hostpeer_stats(proto::StatsBody* out) {
  if (out == nullptr) return VMCI_ERROR_INVALID_ARGS;
  const proto::DeliveredBody body{};
  const auto reply = impl_->conn()->request(proto::FrameType::kStats, proto::body_bytes(body));
  if (reply.result < VMCI_SUCCESS) return static_cast<int>(reply.result);
  if (reply.extra.size() != sizeof *out) return VMCI_ERROR_GENERIC;  // not hostpeer's answer
  std::memcpy(out, reply.extra.data(), sizeof *out);
  return VMCI_SUCCESS;
}

int Driver::hostpeer_introspection(std::string* json) {
  if (json == nullptr) return VMCI_ERROR_INVALID_ARGS;
  const std::shared_ptr<internal::Connection> conn = impl_->conn();
  // One snapshot at a time per connection: hostpeer keeps the one being
  // answered in pieces.
  std::lock_guard lock(impl_->introspection_mutex);
  json->clear();
  uint64_t offset = 0;
  for (;;) {
    const proto::IntrospectBody body{offset};
    const auto reply = conn->request(proto::FrameType::kIntrospect, proto::body_bytes(body));
    if (reply.result < VMCI_SUCCESS) return static_cast<int>(reply.result);
    json->append(reply.extra.begin(), reply.extra.end());
    if (conn->hostpeer_minor() < 4) return VMCI_SUCCESS;  // whole, in one answer
    const auto total = static_cast<uint64_t>(reply.result);
    offset += reply.extra.size();
    if (offset == total) return VMCI_SUCCESS;
    if (reply.extra.empty() || offset > total) return VMCI_ERROR_GENERIC;  // not hostpeer's answer
  }
}

int Driver::hostpeer_stats(Stats* out) {
  if (out == nullptr) return VMCI_ERROR_INVALID_ARGS;
  proto::StatsBody body{};
  const int status = hostpeer_stats(&body);
  if (status < VMCI_SUCCESS) return status;
  *out = Stats{body.guest_contexts,   body.host_connections, body.host_datagram_handles,
               body.queue_pairs,      body.queue_pair_bytes, body.doorbells,
               body.ring_channels,    body.ring_grants,      body.pending_datagrams,
               body.pending_datagram_bytes, body.datagrams_routed, body.events_sent,
               body.doorbells_rung};
  return VMCI_SUCCESS;
}

int Driver::Direct::qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                        uint64_t produce_size, uint64_t consume_size, vmci_id peer, uint32_t flags,
                        uint32_t priv_flags) {
  const int status =
      impl_->role == proto::Role::kHost
          ? impl_->host_qpair_alloc(qpair, handle, produce_size, consume_size, peer, flags,
                                    priv_flags)
          : impl_->queue_pairs->alloc(impl_->own_cid(), qpair, handle, produce_size,
                                      consume_size, peer, flags, priv_flags);
  if (status >= VMCI_SUCCESS && qpair != nullptr && *qpair) {
    impl_->qp_watches.add((*qpair)->handle(), (*qpair)->peer_watch());
  }
  return status;
}

int Driver::Impl::host_qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                                   uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                                   uint32_t flags, uint32_t priv_flags) {
  const int checked = proto::check_qpair_alloc(qpair != nullptr, handle != nullptr, produce_size,
                                               consume_size, flags);
  if (checked != VMCI_SUCCESS) return checked;
  const proto::QueuePairAllocBody body{*handle,   peer,         flags, priv_flags,
                                       0,         produce_size, consume_size};
  const auto reply = conn()->request(
      proto::FrameType::kQueuePairAlloc,
      proto::body_bytes(body));
  if (reply.result < VMCI_SUCCESS) return static_cast<int>(reply.result);
  std::string error = "no memory came with the result";
  std::unique_ptr<QueuePair> mapped;
  const uint64_t key = proto::handle_key(reply.handle);
  std::shared_ptr<proto::HostQueueMemory> mapping;
  {
    std::lock_guard lock(host_memory_mutex);
    const uint64_t total =
        proto::queue_pair_layout(consume_size, produce_size).total;  // guest view
    if (reply.fds.size() == 2) {  // hostpeer's memfd and the status page
      const proto::MemoryExtent whole{reply.fds[0], 0, total};
      mapped = proto::map_queue_pair(reply.handle, std::span(&whole, 1), reply.fds[1],
                                     produce_size, consume_size, &error, &mapping);
    } else if (reply.fds.size() == 1) {  // the guest's pages came in a frame before
      auto frame = host_memory_frames.extract(key);
      std::vector<proto::MemoryExtent> extents;
      if (!frame.empty() &&
          proto::extents_of(frame.mapped()->extents, frame.mapped()->fds, total, &extents,
                            &error)) {
        mapped = proto::map_queue_pair(reply.handle, extents, reply.fds[0], produce_size,
                                       consume_size, &error, &mapping);
      }
    }
    if (mapped) {
      std::erase_if(host_memory, [](const auto& entry) { return entry.second.expired(); });
      host_memory[key] = mapping;
      // The guest's pages of a pair this connection created may have come
      // already (a guest attached before this thread got here).
      if (auto later = host_memory_frames.extract(key); !later.empty()) {
        adopt(*mapping, *later.mapped());
      }
    }
  }
  if (!mapped) {
    std::fprintf(stderr, "vmci: queue pair %s: %s\n", proto::to_string(reply.handle).c_str(),
                 error.c_str());
    const proto::QueuePairDetachBody undo{reply.handle};
    conn()->request(proto::FrameType::kQueuePairDetach,
                        proto::body_bytes(undo));
    return VMCI_ERROR_NO_RESOURCES;
  }
  *handle = reply.handle;
  *qpair = std::move(mapped);
  return VMCI_SUCCESS;
}

void Driver::Impl::queue_pair_memory(std::shared_ptr<internal::QueuePairMemoryFrame> memory) {
  std::lock_guard lock(host_memory_mutex);
  const uint64_t key = proto::handle_key(memory->handle);
  auto it = host_memory.find(key);
  if (auto mapping = it == host_memory.end() ? nullptr : it->second.lock()) {
    adopt(*mapping, *memory);
    return;
  }
  host_memory_frames[key] = std::move(memory);
}

bool Driver::Impl::adopt(proto::HostQueueMemory& mapping,
                         const internal::QueuePairMemoryFrame& memory) {
  std::vector<proto::MemoryExtent> extents;
  std::string error;
  uint64_t total = 0;
  for (const auto& e : memory.extents) total += uint64_t{e.page_count} * proto::kQueuePageSize;
  if (proto::extents_of(memory.extents, memory.fds, total, &extents, &error) &&
      mapping.adopt(extents, &error)) {
    return true;
  }
  std::fprintf(stderr, "vmci: queue pair %s: the guest's pages: %s\n",
               proto::to_string(memory.handle).c_str(), error.c_str());
  return false;
}

int Driver::Direct::qpair_detach(std::unique_ptr<QueuePair>* qpair) {
  if (impl_->role == proto::Role::kGuest) return impl_->queue_pairs->detach(qpair);
  if (qpair == nullptr || !*qpair) return VMCI_ERROR_INVALID_ARGS;
  const proto::QueuePairDetachBody body{(*qpair)->handle()};
  qpair->reset();
  {
    std::lock_guard lock(impl_->host_memory_mutex);
    impl_->host_memory_frames.erase(proto::handle_key(body.handle));
  }
  return static_cast<int>(
      impl_->conn()
          ->request(proto::FrameType::kQueuePairDetach,
                    proto::body_bytes(body))
          .result);
}

int Driver::Direct::doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                            DoorbellCallback callback) {
  const int checked =
      proto::check_doorbell_create(handle != nullptr, bool(callback), flags, priv_flags);
  if (checked != VMCI_SUCCESS) return checked;
  Impl& d = *impl_;
  if (!proto::is_invalid(*handle) && handle->resource == VMCI_INVALID_ID) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  const uint64_t index = d.doorbells.reserve_index();
  if (d.role == proto::Role::kHost) {
    if (!proto::is_invalid(*handle) && handle->context != VMCI_HOST_CONTEXT_ID) {
      d.doorbells.release_index(index);
      return VMCI_ERROR_INVALID_ARGS;
    }
    const proto::DoorbellCreateBody body{
        proto::is_invalid(*handle) ? VMCI_INVALID_ID : handle->resource, priv_flags, index};
    // The doorbell is in the table before the caller wakes.
    auto hook = [&](const proto::ResultBody& r) {
      if (r.result >= VMCI_SUCCESS) {
        d.doorbells.insert(r.handle, index, callback);
        d.doorbells.activate(r.handle);
      }
    };
    const auto reply = d.conn()->request(
        proto::FrameType::kDoorbellCreate,
        proto::body_bytes(body), hook);
    if (reply.result < VMCI_SUCCESS) {
      d.doorbells.release_index(index);
      return static_cast<int>(reply.result);
    }
    *handle = reply.handle;
    {
      std::lock_guard lock(d.restorable_mutex);
      d.host_doorbells[proto::handle_key(reply.handle)] =
          Impl::HostHandle{reply.handle.resource, 0, priv_flags, index};
    }
    d.deliveries->inbox().rescan();  // a ring that came before the doorbell was in the table
    return VMCI_SUCCESS;
  }
  // A guest: the doorbell is its own resource (one table with datagram
  // handles, item 35), then linked to its index (§5.1).
  const bool any = proto::is_invalid(*handle);
  const vmci_id cid = any ? d.own_cid() : handle->context;
  vmci_handle h;
  int status = cid == VMCI_INVALID_ID ? VMCI_ERROR_NO_RESOURCES
                                      : d.handles.claim(cid, any ? VMCI_INVALID_ID : handle->resource, &h);
  if (status == VMCI_ERROR_DUPLICATE_ENTRY) status = VMCI_ERROR_ALREADY_EXISTS;  // §5.1 step 4
  if (status < VMCI_SUCCESS) {
    d.doorbells.release_index(index);
    return status;
  }
  d.doorbells.insert(h, index, std::move(callback));  // the claim makes the handle new here
  const auto reply = d.conn()->request(proto::FrameType::kDatagram,
                                           proto::make_doorbell_link_message(h, index));
  if (reply.result < VMCI_SUCCESS) {
    d.doorbells.remove(h, d.deliveries->on_delivery_thread());
    d.handles.release(h);
    return static_cast<int>(reply.result);
  }
  d.doorbells.activate(h);
  d.deliveries->inbox().rescan();  // a ring that came before it was active
  *handle = h;
  return VMCI_SUCCESS;
}

int Driver::Direct::doorbell_destroy(vmci_handle handle) {
  if (proto::is_invalid(handle)) return VMCI_ERROR_INVALID_ARGS;
  Impl& d = *impl_;
  if (!d.doorbells.contains(handle)) return VMCI_ERROR_NOT_FOUND;
  if (d.role == proto::Role::kHost) {
    const proto::DoorbellDestroyBody body{handle};
    d.conn()->request(proto::FrameType::kDoorbellDestroy,
                          proto::body_bytes(body));
    std::lock_guard lock(d.restorable_mutex);
    d.host_doorbells.erase(proto::handle_key(handle));
  } else {
    // A failed unlink is ignored, as the drivers do (§5.1, item 28).
    d.conn()->request(proto::FrameType::kDatagram,
                          proto::make_doorbell_message(VMCI_DOORBELL_UNLINK, handle));
  }
  const int status = d.doorbells.remove(handle, d.deliveries->on_delivery_thread());
  if (d.role == proto::Role::kGuest) d.handles.release(handle);
  return status;
}

int Driver::Direct::doorbell_notify(vmci_handle handle, uint32_t priv_flags) {
  if (proto::is_invalid(handle) || (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  // Through a ring channel if hostpeer granted one (a guest's flags are
  // not sent, so its grants are for 0).
  const uint32_t granted_for = impl_->role == proto::Role::kHost ? priv_flags : 0;
  switch (impl_->ring_grants.ring(handle, granted_for)) {
    case proto::RingerGrants::Ring::kRung:
      impl_->rung_direct.fetch_add(1, std::memory_order_relaxed);
      return VMCI_SUCCESS;
    case proto::RingerGrants::Ring::kRungAndWoke:
      impl_->rung_direct_woke.fetch_add(1, std::memory_order_relaxed);
      return VMCI_SUCCESS;
    case proto::RingerGrants::Ring::kNotGranted:
      break;
  }
  impl_->rung_through_hostpeer.fetch_add(1, std::memory_order_relaxed);
  if (impl_->role == proto::Role::kHost) {
    const proto::DoorbellNotifyBody body{handle, priv_flags, 0};
    return static_cast<int>(
        impl_->conn()
            ->request(proto::FrameType::kDoorbellNotify,
                      proto::body_bytes(body))
            .result);
  }
  // FreeBSD sends the hypercall; the flags are not part of it (§4.4).
  return static_cast<int>(
      impl_->conn()
          ->request(proto::FrameType::kDatagram,
                    proto::make_doorbell_message(VMCI_DOORBELL_NOTIFY, handle))
          .result);
}

Driver::RingCounts Driver::ring_counts() const {
  return RingCounts{impl_->rung_direct.load(), impl_->rung_direct_woke.load(),
                    impl_->rung_through_hostpeer.load()};
}

void Driver::Direct::hold_callbacks() { impl_->deliveries->hold(); }

void Driver::Direct::release_callbacks() {
  // A round trip first: hostpeer's frames are read in order, so every
  // ring-channel grant it sent before the answer is known here, and the
  // release's scan sees the rings in those channels' slots too.
  impl_->sync();
  impl_->deliveries->release();
}

}  // namespace vmci::guest
