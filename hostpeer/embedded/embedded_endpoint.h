// embedded_endpoint.h: a host connection inside hostpeer's own process. It
// calls the core directly (no socket) and runs its callbacks on its own
// delivery thread, never under the core's lock. That thread sleeps in its
// EndpointInbox, so a ring from a peer's ring channel, or a datagram in its
// lane, wakes it directly.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "memory/notify_memory_file.h"
#include "server/locked_core.h"
#include "vmci/endpoint.h"
#include "vmci/proto/endpoint_datagram_lanes.h"
#include "vmci/proto/endpoint_doorbells.h"
#include "vmci/proto/endpoint_inbox.h"
#include "vmci/proto/log_rate_limit.h"
#include "vmci/proto/queue_pair_mapping.h"
#include "vmci/proto/ringer_grants.h"

namespace spdlog {
class logger;
}

namespace vmci::host {

class EmbeddedEndpoint final : public Endpoint, public PeerSink {
 public:
  // Admits itself to the core as a trusted host connection. `log` hears of
  // datagrams it drops (null: nowhere): from a guest's lane, at most a
  // burst per guest and reason per period, then a count (`drop_log`).
  explicit EmbeddedEndpoint(LockedCore& core, std::shared_ptr<spdlog::logger> log = nullptr,
                            proto::LogRateLimitOptions drop_log = {});
  // Leaves the core (its handles go) after a running callback finishes.
  ~EmbeddedEndpoint() override;

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
  // Inside one of this endpoint's callbacks, the pair's mapping goes when
  // the callback returns (*qpair is null at once, as always).
  int qpair_detach(std::unique_ptr<QueuePair>* qpair) override;
  int doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                      DoorbellCallback callback) override;
  int doorbell_destroy(vmci_handle handle) override;
  int doorbell_notify(vmci_handle handle, uint32_t priv_flags) override;
  void hold_callbacks() override;
  void release_callbacks() override;
  bool connected() const override { return true; }

  // PeerSink: called under the core's lock.
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) override;
  void ring(uint64_t index) override;
  void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
             bool first) override;
  void close_ring_channel(uint32_t channel_id, proto::RingSide side) override;
  void queue_pair_memory(vmci_handle handle,
                         std::shared_ptr<const QueuePairMemory> memory) override;

 private:
  void run_deliveries();
  void dispatch(std::vector<uint8_t>& datagram);
  // A datagram, or a lane, that a guest's lane broke a rule with.
  void refused(vmci_id ringer_cid, proto::EndpointDatagramLanes::Refusal reason,
               const std::string& why);
  bool on_delivery_thread() const;

  LockedCore& core_;
  std::shared_ptr<spdlog::logger> log_;
  // What guests' lanes made it drop: keyed by (ringer's context, Refusal).
  proto::LogRateLimit refusals_;
  std::unique_ptr<NotifyMemoryFile> notify_;  // this endpoint's doorbell notify memory
  proto::EndpointDoorbells doorbells_;
  proto::EndpointDatagramLanes lanes_;  // datagrams from guests' ring channels
  proto::RingerGrants host_lanes_;      // its datagrams to guests, through their channels
  PeerId peer_ = 0;
  // The mappings of this endpoint's pairs, for the guest's pages that may
  // replace hostpeer's memory (queue_pair_memory). Guarded by the core's
  // lock: pairs are mapped, and the sink called, under it.
  std::map<uint64_t, std::weak_ptr<proto::HostQueueMemory>> host_memory_;
  QueuePairWatches qp_watches_;  // the pairs' waiters, told when a guest goes
  // Pairs a callback detached: unmapped once it returns, so that what it
  // does after the detach does not wait for the unmapping (a TLB shootdown
  // across hostpeer's threads). Delivery thread only.
  std::vector<std::unique_ptr<QueuePair>> unmap_after_callback_;

  proto::EndpointInbox inbox_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;  // running_ changed
  std::map<vmci_id, std::shared_ptr<DatagramCallback>> callbacks_;  // by resource id
  proto::EventSubscriptions subscriptions_;
  // What runs now: a datagram callback, or &subscriptions_ while an event is
  // dispatched; null when idle.
  const void* running_ = nullptr;
  std::thread thread_;
};

}  // namespace vmci::host
