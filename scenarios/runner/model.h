// model.h: a scenario as loaded: actors and steps, checked against the
// format (loader.h), ready to play (executor.h).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vmci/vmci_defs.h"

namespace vmci::scenario {

// What a step's result must be: a status (exact), an integer, a range, or
// (when absent) any non-negative result.
// What an op's result means: a VMCI status (or a count), or, for the
// vSockets ops, a count or a negated errno value as a system call has it.
enum class ResultDomain { kVmciStatus, kErrno };

// The result as a report shows it: "VMCI_ERROR_NOT_FOUND (-20)",
// "ECONNRESET (-104)", or the number itself.
std::string describe_result(ResultDomain domain, int64_t result);

struct Expectation {
  enum class Kind { kNonNegative, kExact, kRange };
  Kind kind = Kind::kNonNegative;
  int64_t value = 0;         // kExact
  int64_t min = 0, max = 0;  // kRange
  ResultDomain domain = ResultDomain::kVmciStatus;
  bool matches(int64_t result) const;
  std::string describe() const;
};

struct Step {
  std::string op;
  std::string actor;  // empty for sleep, parallel, repeat, restart_hostpeer
  std::string note;
  std::string path;     // JSON path in the file, e.g. "steps[3]"
  nlohmann::json args;  // the step object as written
  Expectation expect;
  std::string as;  // variable bound on success, or empty
  std::optional<int64_t> timeout_ms;
  int64_t count = 0;                        // repeat
  std::vector<Step> steps;                  // repeat
  std::vector<std::vector<Step>> branches;  // parallel
};

struct ActorSpec {
  std::string name;
  bool host = false;
  std::optional<vmci_id> context_id;
  uint32_t priv_flags = 0;
  bool process = false;  // isolation "process"
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  int64_t timeout_ms = 30000;
  bool sets_hostpeer = false;              // has a "hostpeer" object
  std::map<std::string, uint64_t> limits;  // hostpeer.limits
  bool restarts_hostpeer = false;          // uses restart_hostpeer
  // "played_against": the program the scenario talks to (a device proxy);
  // played only with --connect to it and --against naming it.
  std::string played_against;
  std::vector<ActorSpec> actors;
  std::vector<Step> steps;
};

}  // namespace vmci::scenario
