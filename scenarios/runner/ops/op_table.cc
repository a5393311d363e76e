#include "runner/ops/op_table.h"

#include <algorithm>

#include "runner/ops/op_context.h"

namespace vmci::scenario {

const KeySpec* OpSpec::key(std::string_view name) const {
  for (const KeySpec& k : keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

const std::vector<OpSpec>& op_table() {
  static const std::vector<OpSpec> table = [] {
    std::vector<OpSpec> all;
    // One function per family, each in its own file.
    for (auto* family :
         {&datagram_ops, &event_ops, &queue_pair_ops, &doorbell_ops, &control_ops, &vsock_ops}) {
      for (OpSpec& spec : family()) all.push_back(std::move(spec));
    }
    return all;
  }();
  return table;
}

const OpSpec* find_op(std::string_view name) {
  for (const OpSpec& spec : op_table()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const OpSpec* find_recorded(RecordedFrom from, std::string_view trace_op) {
  if (from == RecordedFrom::kNotRecorded) return nullptr;
  for (const OpSpec& spec : op_table()) {
    if (spec.recorded.from == from && spec.recorded.trace_op == trace_op) return &spec;
  }
  return nullptr;
}

std::string_view value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::kHandle:
      return "handle";
    case ValueKind::kResource:
      return "resource";
    case ValueKind::kDatagramFlags:
      return "datagram-flags";
    case ValueKind::kDoorbellFlags:
      return "doorbell-flags";
    case ValueKind::kQueuePairFlags:
      return "qpair-flags";
    case ValueKind::kPrivFlags:
      return "priv-flags";
    case ValueKind::kData:
      return "data";
    case ValueKind::kEventMatch:
      return "event-fields";
    case ValueKind::kEvent:
      return "event";
    case ValueKind::kSubscription:
      return "subscription";
    case ValueKind::kQueuePair:
      return "qpair";
    case ValueKind::kSize:
      return "size";
    case ValueKind::kChunk:
      return "size";
    case ValueKind::kContext:
      return "context";
    case ValueKind::kIndexes:
      return "indexes";
    case ValueKind::kMilliseconds:
      return "ms";
    case ValueKind::kCount:
      return "count";
    case ValueKind::kSteps:
      return "steps";
    case ValueKind::kBranches:
      return "branches";
    case ValueKind::kBoolean:
      return "bool";
    case ValueKind::kPort:
      return "port";
    case ValueKind::kBacklog:
      return "backlog";
    case ValueKind::kShutdownHow:
      return "how";
    case ValueKind::kVsockAddress:
      return "address";
    case ValueKind::kVsockListener:
      return "listener";
    case ValueKind::kVsockStream:
      return "stream";
    case ValueKind::kVsockDatagram:
      return "dgram-socket";
    case ValueKind::kVsockSocket:
      return "socket";
    case ValueKind::kCapture:
      return "capture";
  }
  return "?";
}

std::vector<Owned> owned_kinds(ValueKind kind) {
  switch (kind) {
    case ValueKind::kQueuePair:
      return {Owned::kQueuePair};
    case ValueKind::kVsockListener:
      return {Owned::kVsockListener};
    case ValueKind::kVsockStream:
      return {Owned::kVsockStream};
    case ValueKind::kVsockDatagram:
      return {Owned::kVsockDatagram};
    case ValueKind::kVsockSocket:
      return {Owned::kVsockListener, Owned::kVsockStream, Owned::kVsockDatagram};
    default:
      return {};
  }
}

std::vector<std::string> op_list() {
  size_t width = 0;
  for (const OpSpec& spec : op_table()) width = std::max(width, spec.name.size());
  std::vector<std::string> lines;
  for (const OpSpec& spec : op_table()) {
    std::string line(spec.name);
    line.append(width + 2 - spec.name.size(), ' ');
    std::string keys = spec.actor == ActorRule::kRequired ? "actor" : "";
    for (const KeySpec& key : spec.keys) {
      // "src:handle"; just "handle" where the key is named after its kind.
      const std::string_view kind = value_kind_name(key.kind);
      const std::string text =
          std::string(key.name) + (kind == key.name ? "" : ":" + std::string(kind));
      keys +=
          (keys.empty() ? "" : " ") + (key.need == KeyNeed::kOptional ? "[" + text + "]" : text);
    }
    line += keys.empty() ? "-" : keys;
    line += " — " + std::string(spec.summary);
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace vmci::scenario
