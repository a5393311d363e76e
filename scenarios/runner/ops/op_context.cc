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

Data data_of(OpContext& run, const nlohmann::json& v) {
  Data data;
  std::string error;
  if (!v.contains("fields")) {
    parse_data(v, &data, &error);
    return data;
  }
  for (const auto& field : v["fields"]) {
    const std::string kind = field.begin().key();
    const nlohmann::json& value = field.begin().value();
    if (kind == "handle") {
      const vmci_handle h = run.handle(value);
      put_le(&data.bytes, h.context, 4);
      put_le(&data.bytes, h.resource, 4);
    } else if (const std::optional<size_t> width = field_width(kind)) {
      uint64_t number = 0;
      if (value.is_string()) {
        const Value bound = run.variable(value.get<std::string>());
        if (bound.is_handle || bound.owned != Owned::kNothing) {
          fail_step("field " + kind + ": " + value.get<std::string>() + " holds no number");
        }
        number = static_cast<uint64_t>(bound.number);
      } else if (value.is_number_integer()) {
        number = value.get<uint64_t>();  // a handle resolved for a process actor is an object
      } else {
        fail_step("field " + kind + ": " + value.dump() + " is no number");
      }
      if (*width < 8 && number >> (8 * *width) != 0) {
        fail_step("field " + kind + ": " + std::to_string(number) + " does not fit");
      }
      put_le(&data.bytes, number, *width);
    } else {
      Data part;
      parse_data(field, &part, &error);
      const std::vector<uint8_t> bytes = part.materialize();
      data.bytes.insert(data.bytes.end(), bytes.begin(), bytes.end());
    }
  }
  return data;
}

void capture(OpContext& run, const Step& step, std::span<const uint8_t> bytes) {
  if (!step.args.contains("capture")) return;
  for (const auto& [name, field] : step.args["capture"].items()) {
    const std::string type = field["type"];
    const uint64_t offset = size_of(field["offset"]);
    const size_t width = *field_width(type);
    if (offset > bytes.size() || bytes.size() - offset < width) {
      fail_step("capture " + name + ": a " + type + " at offset " + std::to_string(offset) +
                    " needs " + std::to_string(offset + width) + " bytes",
                std::to_string(offset + width) + " bytes or more",
                std::to_string(bytes.size()) + " bytes");
    }
    const uint64_t raw = get_le(bytes.subspan(offset, width));
    if (type == "handle") {
      run.bind(name, Value{.is_handle = true,
                           .handle = VMCI_MAKE_HANDLE(static_cast<vmci_id>(raw),
                                                      static_cast<vmci_id>(raw >> 32))});
    } else {
      run.bind(name, Value{.number = static_cast<int64_t>(raw)});
    }
  }
}

uint64_t size_of(const nlohmann::json& v) {
  uint64_t size = 0;
  std::string error;
  parse_size(v, &size, &error);
  return size;
}

}  // namespace vmci::scenario
