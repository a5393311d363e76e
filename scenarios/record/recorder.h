// recorder.h: turns traces (trace_reader.h) into a scenario that replays
// the same conversation against a fresh hostpeer and expects the same
// results: `vmci-scenario record`.
//
// Each traced endpoint becomes an actor (guests keep their context ids, so
// that bytes naming them compare equal); its calls become steps and its
// callbacks expect_* steps. The steps of all endpoints are merged by start
// time, except that a queue-pair data call waits until the pair's model
// (the bytes in each queue, from both endpoints' calls) lets it give its
// recorded result, and a callback waits for what caused it; the later calls
// of the same thread wait with it. A poll that found nothing is left out
// where the merged order puts data in its way (replayed, it would take
// data that the recording did not), and a query whose recorded count the
// merged order cannot give is replayed without an expectation; both say
// so in a step note or a warning.
//
//   Recording out;
//   if (!record_scenario(lines, {.name = "echo"}, &out, &error)) { ... }
//   std::cout << out.scenario.dump(2);
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "record/trace_reader.h"

namespace vmci::scenario {

struct RecordOptions {
  std::string name = "recorded";  // the scenario's name
  std::string description;        // empty: says where it was recorded from
  // Non-empty: the scenario has this actor alone ("vm1", "host", ...: the
  // names the recording gives), to be played against the other side's
  // program (`run --connect`). Its steps are the ones the whole recording
  // would give it; what other actors made (handles, pairs, contexts) is
  // written as the values they had, and no `hostpeer` limits are written.
  std::string actor;
};

struct Recording {
  nlohmann::ordered_json scenario;
  std::vector<std::string> warnings;  // what the replay may not reproduce
  size_t steps = 0;                   // steps before runs were folded into repeats
  size_t dropped_polls = 0;
};

// False with *error when the traces cannot make a scenario (no endpoint,
// an endpoint without its "open" line, an `actor` that is none of the
// recording's, ...).
bool record_scenario(const std::vector<TraceLine>& lines, const RecordOptions& options,
                     Recording* out, std::string* error);

}  // namespace vmci::scenario
