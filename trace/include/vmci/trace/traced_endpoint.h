// traced_endpoint.h: an Endpoint that writes every call made on it (with
// its arguments and result), every data call on its queue pairs and every
// callback it ran to a trace file, then passes the call on. This is what
// VMCI_TRACE=FILE turns on for guest drivers and embedded host endpoints;
// `vmci-scenario record` turns such traces into a scenario.
//
//   auto file = vmci::trace::TraceFile::open("/tmp/proxy.jsonl", &error);
//   vmci::trace::TracedEndpoint traced(
//       std::move(endpoint), std::move(file),
//       {vmci::proto::Role::kHost, /*embedded=*/true, VMCI_HOST_CONTEXT_ID});
//   traced.datagram_send(dg);   // traced, then sent
//
// Threading: as vmci::Endpoint; lines from concurrent calls may appear in
// any order in the file, each stamped with its start time.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "vmci/endpoint.h"
#include "vmci/proto/frame.h"
#include "vmci/trace/trace_file.h"

namespace vmci::trace {

// Who the traced endpoint is: written once, on its "open" line.
struct EndpointIdentity {
  proto::Role role = proto::Role::kGuest;
  bool embedded = false;  // a host endpoint inside hostpeer's process
  vmci_id context_id = VMCI_INVALID_ID;
  vmci_id requested_context_id = VMCI_INVALID_ID;  // guests: the id asked for
  uint32_t priv_flags = 0;                         // guests: the context's
};

class TracedEndpoint final : public Endpoint {
 public:
  // Traces calls to `inner`, which must outlive this object.
  TracedEndpoint(Endpoint& inner, std::shared_ptr<TraceFile> file,
                 const EndpointIdentity& identity);
  // Owns `inner`.
  TracedEndpoint(std::unique_ptr<Endpoint> inner, std::shared_ptr<TraceFile> file,
                 const EndpointIdentity& identity);
  // Writes the "close" line (a clean close), unless closed() said otherwise.
  ~TracedEndpoint() override;

  // The endpoint ended as `how` says: "disconnect" (a clean close) or
  // "kill" (its connection was cut, nothing detached first).
  void closed(const char* how);

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
  bool connected() const override { return inner_.connected(); }

  // The trace's name for this endpoint ("<pid>-<random hex>").
  const std::string& id() const { return id_; }

 private:
  class Lines;
  class QueuePairTrace;

  std::unique_ptr<Endpoint> owned_;
  Endpoint& inner_;
  std::shared_ptr<Lines> lines_;
  const std::string id_;
  std::mutex mutex_;  // guards the two below
  std::unordered_map<const QueuePair*, std::string> qpair_ids_;
  uint64_t next_qpair_ = 1;
  bool closed_ = false;
};

}  // namespace vmci::trace
