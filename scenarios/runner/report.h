// report.h: what the runner prints: each step as it ends, each scenario's
// verdict with the failing step's details, and a summary.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "executor.h"
#include "model.h"

namespace vmci::scenario {

class ConsoleReport {
 public:
  // Colours when `out` is a terminal; plain lines otherwise.
  explicit ConsoleReport(std::FILE* out);

  void scenario_started(const Scenario& scenario);
  // On a terminal, shows the running step on a line that its end replaces.
  void step_started(const StepOutcome& step);
  void step_finished(const StepOutcome& step);
  void scenario_finished(const ScenarioOutcome& outcome);
  // Prints the summary; returns the exit status: 0 when every scenario
  // passed or was skipped, 1 when one failed, 3 when the runner could not
  // play one (that wins over 1).
  int summary(const std::vector<ScenarioOutcome>& outcomes);

 private:
  std::string paint(const char* colour, const std::string& text) const;

  std::FILE* out_;
  bool terminal_;
  bool live_line_ = false;  // a step_started line waits to be replaced
};

// The outcomes as the `--report FILE` JSON: each scenario with its status,
// reason, time, leftovers and each step's result and timing.
nlohmann::json json_report(const std::vector<ScenarioOutcome>& outcomes);

// The outcomes as the `--junit FILE` JUnit XML: one test case per scenario.
std::string junit_report(const std::vector<ScenarioOutcome>& outcomes);

}  // namespace vmci::scenario
