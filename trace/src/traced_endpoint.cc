#include "vmci/trace/traced_endpoint.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "vmci/proto/names.h"

namespace vmci::trace {
namespace {

using nlohmann::json;

json handle_json(vmci_handle h) { return {{"context", h.context}, {"resource", h.resource}}; }

std::string new_endpoint_id() {
  std::random_device random;
  char id[48];
  std::snprintf(id, sizeof id, "%d-%08x", static_cast<int>(getpid()), random());
  return id;
}

// The scenario op that a queue-pair data call is.
const char* op_name(QueuePairCall::Op op) {
  switch (op) {
    case QueuePairCall::Op::kEnqueue: return "qpair_enqueue";
    case QueuePairCall::Op::kDequeue: return "qpair_dequeue";
    case QueuePairCall::Op::kPeek: return "qpair_peek";
    case QueuePairCall::Op::kProduceFreeSpace: return "qpair_produce_free_space";
    case QueuePairCall::Op::kProduceBufReady: return "qpair_produce_buf_ready";
    case QueuePairCall::Op::kConsumeFreeSpace: return "qpair_consume_free_space";
    case QueuePairCall::Op::kConsumeBufReady: return "qpair_consume_buf_ready";
    case QueuePairCall::Op::kGetProduceIndexes: return "qpair_get_produce_indexes";
    case QueuePairCall::Op::kGetConsumeIndexes: return "qpair_get_consume_indexes";
  }
  return "?";
}

}  // namespace

// Writes one endpoint's lines, each with the fields every line has.
class TracedEndpoint::Lines {
 public:
  Lines(std::shared_ptr<TraceFile> file, std::string id) : file_(std::move(file)), id_(std::move(id)) {}

  // A line stamped `started_ns`, of `kind` ("open", "call", "callback",
  // "close"), with `fields`.
  void write(uint64_t started_ns, const char* kind, json fields) {
    fields["t"] = started_ns;
    fields["pid"] = getpid();
    fields["tid"] = static_cast<long>(syscall(SYS_gettid));
    fields["ep"] = id_;
    fields["kind"] = kind;
    file_->write_line(fields.dump());
  }
  // A call's line also has "t_end": when it returned.
  void call(uint64_t started_ns, const char* op, json fields, int64_t result) {
    fields["t_end"] = monotonic_ns();
    fields["op"] = op;
    fields["result"] = result;
    write(started_ns, "call", std::move(fields));
  }

 private:
  std::shared_ptr<TraceFile> file_;
  const std::string id_;
};

// Traces one queue pair's data calls.
class TracedEndpoint::QueuePairTrace final : public QueuePairObserver {
 public:
  QueuePairTrace(std::shared_ptr<Lines> lines, std::string qpair_id)
      : lines_(std::move(lines)), qpair_id_(std::move(qpair_id)) {}

  void observed(const QueuePair&, const QueuePairCall& call) override {
    json fields = {{"qpair", qpair_id_}};
    switch (call.op) {
      case QueuePairCall::Op::kEnqueue:
      case QueuePairCall::Op::kDequeue:
      case QueuePairCall::Op::kPeek:
        fields["size"] = call.size;
        fields["data_base64"] = to_base64(call.data);
        break;
      case QueuePairCall::Op::kGetProduceIndexes:
      case QueuePairCall::Op::kGetConsumeIndexes:
        fields["tail"] = call.tail;
        fields["head"] = call.head;
        break;
      default:
        break;
    }
    lines_->call(call.started_ns, op_name(call.op), std::move(fields), call.result);
  }

 private:
  std::shared_ptr<Lines> lines_;
  const std::string qpair_id_;
};

TracedEndpoint::TracedEndpoint(Endpoint& inner, std::shared_ptr<TraceFile> file,
                               const EndpointIdentity& identity)
    : inner_(inner), id_(new_endpoint_id()) {
  lines_ = std::make_shared<Lines>(std::move(file), id_);
  json open = {{"role", proto::role_name(identity.role)},
               {"embedded", identity.embedded},
               {"cid", identity.context_id},
               {"priv_flags", identity.priv_flags}};
  if (identity.requested_context_id != VMCI_INVALID_ID) {
    open["requested_cid"] = identity.requested_context_id;
  }
  // A name for the program's connection that outlives it (the runner's
  // process actors set it): `record` takes a later endpoint of the same
  // label for the same actor reconnecting.
  if (const char* label = std::getenv("VMCI_TRACE_LABEL"); label != nullptr && *label != '\0') {
    open["label"] = label;
  }
  lines_->write(monotonic_ns(), "open", std::move(open));
}

TracedEndpoint::TracedEndpoint(std::unique_ptr<Endpoint> inner, std::shared_ptr<TraceFile> file,
                               const EndpointIdentity& identity)
    : TracedEndpoint(*inner, std::move(file), identity) {
  owned_ = std::move(inner);
}

TracedEndpoint::~TracedEndpoint() {
  closed("disconnect");
  owned_.reset();  // its callbacks, which use lines_, stop first
}

void TracedEndpoint::closed(const char* how) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  lines_->write(monotonic_ns(), "close", {{"how", how}});
}

vmci_id TracedEndpoint::get_context_id() {
  const uint64_t t = monotonic_ns();
  const vmci_id cid = inner_.get_context_id();
  lines_->call(t, "get_context_id", json::object(), cid);
  return cid;
}

int TracedEndpoint::datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                           DatagramCallback callback, vmci_handle* out) {
  const uint64_t t = monotonic_ns();
  DatagramCallback traced;
  if (callback) {
    traced = [lines = lines_, callback = std::move(callback)](vmci_datagram* dg) {
      lines->write(monotonic_ns(), "callback",
                   {{"op", "datagram"},
                    {"handle", handle_json(dg->dst)},
                    {"src", handle_json(dg->src)},
                    {"payload_base64", to_base64({reinterpret_cast<const uint8_t*>(dg + 1),
                                                  static_cast<size_t>(dg->payload_size)})}});
      return callback(dg);
    };
  }
  const int result = inner_.datagram_create_handle(resource, flags, priv_flags, std::move(traced), out);
  json fields = {{"resource", resource}, {"flags", flags}, {"priv_flags", priv_flags}};
  if (result == VMCI_SUCCESS && out) fields["out"] = handle_json(*out);
  lines_->call(t, "datagram_create_handle", std::move(fields), result);
  return result;
}

int TracedEndpoint::datagram_destroy_handle(vmci_handle handle) {
  const uint64_t t = monotonic_ns();
  const int result = inner_.datagram_destroy_handle(handle);
  lines_->call(t, "datagram_destroy_handle", {{"handle", handle_json(handle)}}, result);
  return result;
}

int TracedEndpoint::datagram_send(const vmci_datagram* dg) {
  const uint64_t t = monotonic_ns();
  const int result = inner_.datagram_send(dg);
  json fields = json::object();
  if (dg != nullptr) {
    fields = {{"src", handle_json(dg->src)}, {"dst", handle_json(dg->dst)}};
    // The payload is read only where an endpoint reads it: an oversized
    // datagram is refused unread, and its buffer may be shorter than it says.
    if (VMCI_DG_SIZE(dg) <= VMCI_MAX_DG_SIZE) {
      fields["payload_base64"] = to_base64(
          {reinterpret_cast<const uint8_t*>(dg + 1), static_cast<size_t>(dg->payload_size)});
    } else {
      fields["payload_size"] = dg->payload_size;
    }
  }
  lines_->call(t, "datagram_send", std::move(fields), result);
  return result;
}

int TracedEndpoint::event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) {
  const uint64_t t = monotonic_ns();
  EventCallback traced;
  if (callback) {
    traced = [lines = lines_, callback = std::move(callback)](vmci_id sub, vmci_event_data* ed) {
      json fields = {{"op", "event"},
                     {"subscription", sub},
                     {"event", proto::event_name(ed->event)}};
      const auto* payload = reinterpret_cast<const uint8_t*>(ed + 1);
      if (ed->event == VMCI_EVENT_QP_PEER_ATTACH || ed->event == VMCI_EVENT_QP_PEER_DETACH) {
        const auto* qp = reinterpret_cast<const vmci_event_payload_qp*>(payload);
        fields["data"] = {{"handle", handle_json(qp->handle)}, {"peer_id", qp->peer_id}};
      } else if (ed->event == VMCI_EVENT_CTX_REMOVED || ed->event == VMCI_EVENT_CTX_ID_UPDATE) {
        const auto* ctx = reinterpret_cast<const vmci_event_payload_context*>(payload);
        fields["data"] = {{"context_id", ctx->context_id}};
      }
      lines->write(monotonic_ns(), "callback", std::move(fields));
      callback(sub, ed);
    };
  }
  const int result = inner_.event_subscribe(event, std::move(traced), sub_id);
  json fields = {{"event", proto::event_name(event)}};
  if (result == VMCI_SUCCESS && sub_id) fields["subscription"] = *sub_id;
  lines_->call(t, "event_subscribe", std::move(fields), result);
  return result;
}

int TracedEndpoint::event_unsubscribe(vmci_id sub_id) {
  const uint64_t t = monotonic_ns();
  const int result = inner_.event_unsubscribe(sub_id);
  lines_->call(t, "event_unsubscribe", {{"subscription", sub_id}}, result);
  return result;
}

int TracedEndpoint::qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                                uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                                uint32_t flags, uint32_t priv_flags) {
  const uint64_t t = monotonic_ns();
  json fields = {{"produce_size", produce_size}, {"consume_size", consume_size},
                 {"peer", peer},                 {"flags", flags},
                 {"priv_flags", priv_flags}};
  if (handle) fields["handle"] = handle_json(*handle);
  const int result =
      inner_.qpair_alloc(qpair, handle, produce_size, consume_size, peer, flags, priv_flags);
  if (result == VMCI_SUCCESS && qpair && *qpair) {
    std::string qpair_id;
    {
      std::lock_guard lock(mutex_);
      qpair_id = "qp" + std::to_string(next_qpair_++);
      qpair_ids_[qpair->get()] = qpair_id;
    }
    (*qpair)->set_observer(std::make_shared<QueuePairTrace>(lines_, qpair_id));
    fields["qpair"] = qpair_id;
    fields["out"] = handle_json((*qpair)->handle());
  }
  lines_->call(t, "qpair_alloc", std::move(fields), result);
  return result;
}

int TracedEndpoint::qpair_detach(std::unique_ptr<QueuePair>* qpair) {
  const uint64_t t = monotonic_ns();
  json fields = json::object();
  if (qpair && *qpair) {
    std::lock_guard lock(mutex_);
    auto it = qpair_ids_.find(qpair->get());
    if (it != qpair_ids_.end()) {
      fields["qpair"] = it->second;
      qpair_ids_.erase(it);
    }
  }
  const int result = inner_.qpair_detach(qpair);
  lines_->call(t, "qpair_detach", std::move(fields), result);
  return result;
}

int TracedEndpoint::doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                                    DoorbellCallback callback) {
  const uint64_t t = monotonic_ns();
  json fields = {{"flags", flags}, {"priv_flags", priv_flags}};
  if (handle) fields["handle"] = handle_json(*handle);
  // The callback learns its doorbell's handle once create returned.
  auto created = std::make_shared<std::pair<std::mutex, vmci_handle>>();
  created->second = VMCI_INVALID_HANDLE;
  DoorbellCallback traced;
  if (callback) {
    traced = [lines = lines_, created, callback = std::move(callback)] {
      vmci_handle h;
      {
        std::lock_guard lock(created->first);
        h = created->second;
      }
      lines->write(monotonic_ns(), "callback", {{"op", "doorbell"}, {"handle", handle_json(h)}});
      callback();
    };
  }
  const int result = inner_.doorbell_create(handle, flags, priv_flags, std::move(traced));
  if (result == VMCI_SUCCESS && handle) {
    std::lock_guard lock(created->first);
    created->second = *handle;
    fields["out"] = handle_json(*handle);
  }
  lines_->call(t, "doorbell_create", std::move(fields), result);
  return result;
}

int TracedEndpoint::doorbell_destroy(vmci_handle handle) {
  const uint64_t t = monotonic_ns();
  const int result = inner_.doorbell_destroy(handle);
  lines_->call(t, "doorbell_destroy", {{"handle", handle_json(handle)}}, result);
  return result;
}

int TracedEndpoint::doorbell_notify(vmci_handle handle, uint32_t priv_flags) {
  const uint64_t t = monotonic_ns();
  const int result = inner_.doorbell_notify(handle, priv_flags);
  lines_->call(t, "doorbell_notify", {{"handle", handle_json(handle)}, {"priv_flags", priv_flags}},
               result);
  return result;
}

void TracedEndpoint::hold_callbacks() {
  const uint64_t t = monotonic_ns();
  inner_.hold_callbacks();
  lines_->call(t, "hold_callbacks", json::object(), VMCI_SUCCESS);
}

void TracedEndpoint::release_callbacks() {
  const uint64_t t = monotonic_ns();
  inner_.release_callbacks();
  lines_->call(t, "release_callbacks", json::object(), VMCI_SUCCESS);
}

}  // namespace vmci::trace
