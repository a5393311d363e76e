#include "runner/ops/op_context.h"

#include "runner/loader.h"
#include "runner/ops/op_table.h"

namespace vmci::scenario {

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
