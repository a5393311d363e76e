#include "runner/ops/op_context.h"

#include <algorithm>

#include "runner/loader.h"
#include "runner/ops/op_table.h"

namespace vmci::scenario {

std::string owned_name(Owned kind) {
  switch (kind) {
    case Owned::kNothing:
      return "plain value";
    case Owned::kQueuePair:
      return "queue pair";
    case Owned::kVsockListener:
      return "vsock listener";
    case Owned::kVsockStream:
      return "vsock stream";
    case Owned::kVsockDatagram:
      return "vsock datagram socket";
  }
  return "?";
}

Value owned_variable(OpContext& run, const std::string& name, std::span<const Owned> kinds,
                     const std::string& actor) {
  const Value value = run.variable(name);
  if (std::find(kinds.begin(), kinds.end(), value.owned) == kinds.end()) {
    std::string wanted;
    for (const Owned kind : kinds) wanted += (wanted.empty() ? "" : " or ") + owned_name(kind);
    fail_step(name + " is not a " + wanted + " (it is a " + owned_name(value.owned) + ")");
  }
  if (value.owner != actor) {
    fail_step(name + " is " + value.owner + "'s " + owned_name(value.owned) + ", not " + actor +
              "'s");
  }
  return value;
}

uint32_t flags_of(const Step& step, const char* key) {
  uint32_t flags = 0;
  std::string error;
  const OpSpec* spec = find_op(step.op);
  const KeySpec* declared = spec != nullptr ? spec->key(key) : nullptr;
  if (declared != nullptr && step.args.contains(key)) {
    parse_flags(step.args[key], declared->kind, &flags, &error);
  }
  return flags;
}

Data data_of(const nlohmann::json& v) {
  Data data;
  std::string error;
  parse_data(v, &data, &error);
  return data;
}

uint64_t size_of(const nlohmann::json& v) {
  uint64_t size = 0;
  std::string error;
  parse_size(v, &size, &error);
  return size;
}

}  // namespace vmci::scenario
