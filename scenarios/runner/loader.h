// loader.h: reads a scenario file and checks it against the format
// (docs/SCENARIO-FORMAT.md): unknown keys, names, ops and their
// arguments (as the op table declares them, ops/op_table.h), values, data,
// expectations, variables. A file that breaks the format is refused with
// its JSON path and the problem.
//
//   LoadError error;
//   std::optional<Scenario> s = load_scenario("scenarios/demo/hello.json", &error);
//   if (!s) std::cerr << error.describe() << "\n";
#pragma once

#include <optional>
#include <string>

#include "data.h"
#include "model.h"
#include "ops/op_table.h"

namespace vmci::scenario {

struct LoadError {
  std::string file;
  std::string path;  // JSON path, "$" for the document
  std::string message;
  std::string describe() const { return file + ": " + path + ": " + message; }
};

std::optional<Scenario> load_scenario(const std::string& file, LoadError* error);
std::optional<Scenario> parse_scenario(const std::string& file, const std::string& text,
                                       LoadError* error);

// Shared with the executor: decoders of checked values. They return false
// with *error set only for values the loader would have refused.
bool parse_data(const nlohmann::json& value, Data* out, std::string* error);
bool parse_size(const nlohmann::json& value, uint64_t* out, std::string* error);
// `kind`: one of the flag kinds (kDatagramFlags, kDoorbellFlags,
// kQueuePairFlags, kPrivFlags).
bool parse_flags(const nlohmann::json& value, ValueKind kind, uint32_t* out, std::string* error);

}  // namespace vmci::scenario
