// request_trace.h: what `vmci-hostpeer --trace FILE` writes: every request
// the core served, with its result, every delivery it made, and every peer
// that came and went, as JSON Lines in a trace file (vmci/trace/trace_file.h).
// Each line has "hostpeer" (this process's id), "t" and "kind": "start",
// "admit", "remove", "request" or "deliver".
//
// The core calls it under its own lock; it only formats and appends.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>

#include "vmci/host/limits.h"
#include "vmci/proto/frame.h"
#include "vmci/trace/trace_file.h"

namespace vmci::host {

class RequestTrace {
 public:
  explicit RequestTrace(std::shared_ptr<trace::TraceFile> file) : file_(std::move(file)) {}

  void started(const Limits& limits);
  void admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid, int status);
  void removed(uint64_t peer, vmci_id cid);
  // A request of `peer` (context `cid`): `op` with `fields`, and its result.
  void request(uint64_t peer, vmci_id cid, const char* op, nlohmann::json fields, int64_t result);
  // A datagram (or event) handed to `peer` for delivery.
  void delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram);
  // A doorbell of `peer` rung through hostpeer (notify-bitmap `index`).
  void rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index);

  static nlohmann::json handle(vmci_handle h) {
    return {{"context", h.context}, {"resource", h.resource}};
  }

 private:
  void write(const char* kind, nlohmann::json fields);
  std::shared_ptr<trace::TraceFile> file_;
};

}  // namespace vmci::host
