// request_observer.h: what the core reports to whoever watches it: every
// request it served with its result, every datagram and ring it handed a
// peer, and every peer that came and went. `vmci-hostpeer --trace` (JSON
// Lines, request_trace.h) and `--capture` (pcapng, request_capture.h) are
// observers; RequestObservers hands each report to several.
//
// The core calls an observer under its own lock, in the order things
// happen; a request is reported once it has its result, so after the
// deliveries it caused. An observer must not call back into the core.
// When nobody watches, the core holds no observer and a request costs one
// branch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/queue_pair_broker.h"
#include "vmci/host/limits.h"
#include "vmci/proto/frame.h"

namespace vmci::host {

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;

  // True: hostpeer grants no fast paths (datagram lanes, ring channels)
  // while this observer watches, so that every datagram and every ring
  // passes through it and is reported.
  virtual bool needs_all_traffic() const { return false; }

  virtual void started(const Limits& limits) = 0;
  // A peer's hello, and the context it got (or why it was refused).
  virtual void admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid,
                        int status) = 0;
  virtual void removed(uint64_t peer, vmci_id cid) = 0;
  // A datagram `peer` (context `cid`) sent, whole: a hypercall when its
  // destination context is VMCI_HYPERVISOR_CONTEXT_ID. `result` is what the
  // sender got back.
  virtual void sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
                    int64_t result) = 0;
  // Host connections' direct requests (frames, or embedded calls).
  virtual void queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& request,
                                int status, vmci_handle out) = 0;
  virtual void queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle handle, int status) = 0;
  virtual void doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t priv_flags,
                               uint64_t notify_index, int status, vmci_handle out) = 0;
  virtual void doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) = 0;
  virtual void doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle handle,
                               uint32_t priv_flags, int status) = 0;
  virtual void handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                             uint32_t priv_flags, int status, vmci_handle out) = 0;
  virtual void handle_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) = 0;
  virtual void context_id_update(vmci_id old_cid, vmci_id new_cid, int status) = 0;
  // A datagram (or event) handed to `peer` for delivery.
  virtual void delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) = 0;
  // A doorbell of `peer` rung through hostpeer (notify-bitmap `index`).
  virtual void rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) = 0;
};

// Hands every report to each of its observers, in the order given.
class RequestObservers final : public RequestObserver {
 public:
  explicit RequestObservers(std::vector<std::shared_ptr<RequestObserver>> observers)
      : observers_(std::move(observers)) {}

  bool needs_all_traffic() const override {
    for (const auto& o : observers_)
      if (o->needs_all_traffic()) return true;
    return false;
  }

  void started(const Limits& limits) override {
    for (auto& o : observers_) o->started(limits);
  }
  void admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid, int status) override {
    for (auto& o : observers_) o->admitted(peer, role, pid, cid, status);
  }
  void removed(uint64_t peer, vmci_id cid) override {
    for (auto& o : observers_) o->removed(peer, cid);
  }
  void sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
            int64_t result) override {
    for (auto& o : observers_) o->sent(peer, cid, datagram, result);
  }
  void queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& request, int status,
                        vmci_handle out) override {
    for (auto& o : observers_) o->queue_pair_alloc(peer, cid, request, status, out);
  }
  void queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override {
    for (auto& o : observers_) o->queue_pair_detach(peer, cid, handle, status);
  }
  void doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t priv_flags,
                       uint64_t notify_index, int status, vmci_handle out) override {
    for (auto& o : observers_)
      o->doorbell_create(peer, cid, resource, priv_flags, notify_index, status, out);
  }
  void doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override {
    for (auto& o : observers_) o->doorbell_destroy(peer, cid, handle, status);
  }
  void doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle handle, uint32_t priv_flags,
                       int status) override {
    for (auto& o : observers_) o->doorbell_notify(peer, cid, handle, priv_flags, status);
  }
  void handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                     uint32_t priv_flags, int status, vmci_handle out) override {
    for (auto& o : observers_) o->handle_create(peer, cid, resource, flags, priv_flags, status, out);
  }
  void handle_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override {
    for (auto& o : observers_) o->handle_destroy(peer, cid, handle, status);
  }
  void context_id_update(vmci_id old_cid, vmci_id new_cid, int status) override {
    for (auto& o : observers_) o->context_id_update(old_cid, new_cid, status);
  }
  void delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) override {
    for (auto& o : observers_) o->delivered(peer, cid, datagram);
  }
  void rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) override {
    for (auto& o : observers_) o->rang(peer, cid, doorbell, index);
  }

 private:
  std::vector<std::shared_ptr<RequestObserver>> observers_;
};

}  // namespace vmci::host
