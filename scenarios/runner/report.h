// report.h: what the runner prints: each step as it ends, each scenario's
// verdict with the failing step's details, and a summary.
#pragma once

#include <cstdio>
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
  void step_finished(const StepOutcome& step);
  void scenario_finished(const ScenarioOutcome& outcome);
  // Prints the summary; returns the exit status (0 passed or skipped, 1 failed).
  int summary(const std::vector<ScenarioOutcome>& outcomes);

 private:
  std::string paint(const char* colour, const std::string& text) const;

  std::FILE* out_;
  bool terminal_;
};

}  // namespace vmci::scenario
