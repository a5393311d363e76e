// request_trace.h: what `vmci-hostpeer --trace FILE` writes: every request
// the core served, with its result, every delivery it made, and every peer
// that came and went, as JSON Lines in a trace file (vmci/trace/trace_file.h).
// Each line has "hostpeer" (this process's id), "t" and "kind": "start",
// "admit", "remove", "request" or "deliver".
//
// The core calls it under its own lock (request_observer.h); it only
// formats and appends.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>

#include "core/request_observer.h"
#include "vmci/trace/trace_file.h"

namespace vmci::host {

class RequestTrace final : public RequestObserver {
 public:
  explicit RequestTrace(std::shared_ptr<trace::TraceFile> file) : file_(std::move(file)) {}

  void started(const Limits& limits) override;
  void admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid, int status) override;
  void removed(uint64_t peer, vmci_id cid) override;
  void sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
            int64_t result) override;
  void queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& request, int status,
                        vmci_handle out) override;
  void queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t priv_flags,
                       uint64_t notify_index, int status, vmci_handle out) override;
  void doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle handle, uint32_t priv_flags,
                       int status) override;
  void handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                     uint32_t priv_flags, int status, vmci_handle out) override;
  void handle_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void context_id_update(vmci_id old_cid, vmci_id new_cid, int status) override;
  void delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) override;
  void rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) override;

  static nlohmann::json handle(vmci_handle h) {
    return {{"context", h.context}, {"resource", h.resource}};
  }

 private:
  // A request of `peer` (context `cid`): `op` with `fields`, and its result.
  void request(uint64_t peer, vmci_id cid, const char* op, nlohmann::json fields, int64_t result);
  void write(const char* kind, nlohmann::json fields);
  std::shared_ptr<trace::TraceFile> file_;
};

}  // namespace vmci::host
