// executor.h: plays a loaded scenario against a hostpeer that it starts
// itself (embedded, on a private socket), or against a running one
// (RunOptions::connect_socket), with thread actors.
//
//   Executor executor(progress);
//   ScenarioOutcome outcome = executor.run(scenario);
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model.h"

namespace vmci::scenario {

struct StepOutcome {
  enum class Status { kPassed, kFailed, kNotRun };
  Status status = Status::kNotRun;
  std::string index;  // "3", or "5.2" inside repeat/parallel (1-based)
  std::string path;   // JSON path in the file
  std::string actor;
  std::string op;
  std::string note;
  std::string expected;
  std::string actual;
  std::string message;
  double ms = 0;
};

struct ScenarioOutcome {
  // kError: the runner itself could not work (no temporary directory, the
  // hostpeer did not start); the scenario says nothing either way.
  enum class Status { kPassed, kFailed, kSkipped, kError };
  Status status = Status::kPassed;
  std::string name;
  std::string file;
  std::string reason;  // why it failed or was skipped
  std::vector<StepOutcome> steps;
  std::vector<std::string> leftovers;  // inbox items nobody took
  double ms = 0;
};

// Told about each step as it starts and as it ends. Both may be empty; they
// are called one at a time, also when parallel branches run.
struct Progress {
  std::function<void(const StepOutcome&)> step_started;
  std::function<void(const StepOutcome&)> step_finished;
};

// The crash matrix's cut: `actor` (a process actor) gets SIGKILL just
// before the step whose report index is `index` ("3": top-level step 3;
// "5/2.1": the first step of the second branch of parallel step 5), or,
// with `during`, while that step (a streaming op) runs; the steps from
// there are not played (other parallel branches start no further step),
// and the runner checks instead what the others saw and that hostpeer is
// back to what it held before the scenario.
struct KillPoint {
  std::string actor;
  std::string index;
  bool during = false;
  std::string op;  // the step's op, for reports

  // "kill vm1 before step 5/2.1 (qpair_read_all)".
  std::string describe() const {
    return "kill " + actor + (during ? " during" : " before") + " step " + index + " (" + op + ")";
  }
};

// The cuts of `scenario` for process actor `actor`, in the order of the
// steps: before each top-level step and each step of a top-level
// parallel's branches, and during each streaming op among them.
std::vector<KillPoint> kill_points(const Scenario& scenario, const std::string& actor);

struct RunOptions {
  // Empty: every scenario gets a hostpeer of its own, embedded in the
  // runner. Else the socket of a running hostpeer that every scenario uses;
  // scenarios that set `hostpeer` or use `restart_hostpeer` are skipped.
  std::string connect_socket;
  // With connect_socket: the program that serves it (a device proxy), as
  // `--against` names it. Scenarios with "played_against" are played only
  // when it is the same name, and skipped otherwise.
  std::string against;
  // What a process actor's child runs: vmci-scenario (by default the
  // running program, which is it).
  std::string actor_program = "/proc/self/exe";
  std::optional<KillPoint> kill;
  // Non-empty: the hostpeer that the runner starts appends its trace here
  // (host::Options::trace_path), for `vmci-scenario record`.
  std::string hostpeer_trace;
  // Every time the runner waits (the scenario's and steps' timeouts,
  // `within_ms`, `sleep`, connecting, settling) is multiplied by this, for
  // slow builds (sanitizers, valgrind). 0: $VMCI_TIME_SCALE, else 1.
  // Process actors inherit it through $VMCI_TIME_SCALE.
  double time_scale = 0;
};

// The time scale `options` asks for (see RunOptions::time_scale): at least 1.
double effective_time_scale(const RunOptions& options);

class Executor {
 public:
  explicit Executor(Progress progress, RunOptions options = {})
      : progress_(std::move(progress)), options_(std::move(options)) {}

  ScenarioOutcome run(const Scenario& scenario);
  // A process actor's child (`vmci-scenario serve-actor SPEC`): serves the
  // runner's requests on `in_fd` / `out_fd` until `in_fd` ends.
  static int serve_actor(const nlohmann::json& spec, int in_fd, int out_fd);

 private:
  Progress progress_;
  RunOptions options_;
};

}  // namespace vmci::scenario
