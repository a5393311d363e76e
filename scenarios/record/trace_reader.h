// trace_reader.h: reads the trace files that endpoints (VMCI_TRACE) and
// hostpeer (--trace) write, as `vmci-scenario record` needs them.
//
//   std::vector<TraceLine> lines;
//   std::string error;
//   if (!read_traces({"proxy.jsonl", "vm.jsonl"}, &lines, &error)) { ... }
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vmci::scenario {

struct TraceLine {
  nlohmann::json fields;  // the line's object
  uint64_t t = 0;         // its "t": CLOCK_MONOTONIC ns
  std::string where;      // "FILE:LINE", for messages
  bool from_hostpeer = false;  // has "hostpeer" (its pid); else an endpoint's, with "ep"
};

// Reads every line of every file. False with *error naming the file and
// line of the first that is not a trace line. An endpoint's bytes are
// "data_base64" / "payload_base64" in its lines; traces written before
// those keys had "data" / "payload" in hex, which are read and turned into
// the base64 keys here, so the recorder sees one form.
bool read_traces(const std::vector<std::string>& files, std::vector<TraceLine>* lines,
                 std::string* error);

// An old endpoint line's hex "data" / "payload" as "data_base64" /
// "payload_base64" (a line that has the base64 key is left as it is).
// False with *error if the hex is not hex.
bool base64_from_hex_fields(nlohmann::json* fields, std::string* error);

}  // namespace vmci::scenario
