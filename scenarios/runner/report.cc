#include "report.h"

#include <unistd.h>

namespace vmci::scenario {

ConsoleReport::ConsoleReport(std::FILE* out) : out_(out), terminal_(::isatty(::fileno(out))) {}

std::string ConsoleReport::paint(const char* colour, const std::string& text) const {
  if (!terminal_) return text;
  return std::string("\033[") + colour + "m" + text + "\033[0m";
}

void ConsoleReport::scenario_started(const Scenario& scenario) {
  std::fprintf(out_, "%s %s  (%s)\n", paint("1", "▶").c_str(), paint("1", scenario.name).c_str(),
               scenario.file.c_str());
  if (!scenario.description.empty()) std::fprintf(out_, "  %s\n", scenario.description.c_str());
  std::fflush(out_);
}

void ConsoleReport::step_finished(const StepOutcome& step) {
  const bool passed = step.status == StepOutcome::Status::kPassed;
  const std::string mark = passed ? paint("32", "ok  ") : paint("31", "FAIL");
  std::string line = "  " + mark + " " + step.index + " ";
  if (!step.actor.empty()) line += step.actor + " ";
  line += step.op;
  if (!step.actual.empty() && passed) line += " → " + step.actual;
  char ms[32];
  std::snprintf(ms, sizeof ms, "  (%.1f ms)", step.ms);
  line += paint("2", ms);
  if (!step.note.empty()) line += "  " + paint("36", "# " + step.note);
  std::fprintf(out_, "%s\n", line.c_str());
  if (!passed) {
    std::fprintf(out_, "       at %s\n", step.path.c_str());
    if (!step.expected.empty()) std::fprintf(out_, "       expected: %s\n", step.expected.c_str());
    if (!step.actual.empty()) std::fprintf(out_, "       actual:   %s\n", step.actual.c_str());
    if (!step.message.empty()) std::fprintf(out_, "       %s\n", step.message.c_str());
  }
  std::fflush(out_);
}

void ConsoleReport::scenario_finished(const ScenarioOutcome& outcome) {
  for (const auto& item : outcome.leftovers) {
    std::fprintf(out_, "  %s\n", paint("2", "left in inbox: " + item).c_str());
  }
  size_t not_run = 0;
  for (const auto& s : outcome.steps) not_run += s.status == StepOutcome::Status::kNotRun;
  switch (outcome.status) {
    case ScenarioOutcome::Status::kPassed:
      std::fprintf(out_, "  %s (%.0f ms)\n\n", paint("32", "passed").c_str(), outcome.ms);
      break;
    case ScenarioOutcome::Status::kSkipped:
      std::fprintf(out_, "  %s: %s\n\n", paint("33", "skipped").c_str(), outcome.reason.c_str());
      break;
    case ScenarioOutcome::Status::kFailed:
      std::fprintf(out_, "  %s: %s", paint("31", "FAILED").c_str(), outcome.reason.c_str());
      if (not_run) std::fprintf(out_, "; %zu step(s) not run", not_run);
      std::fprintf(out_, "\n\n");
      break;
  }
  std::fflush(out_);
}

int ConsoleReport::summary(const std::vector<ScenarioOutcome>& outcomes) {
  size_t passed = 0, failed = 0, skipped = 0;
  for (const auto& o : outcomes) {
    passed += o.status == ScenarioOutcome::Status::kPassed;
    failed += o.status == ScenarioOutcome::Status::kFailed;
    skipped += o.status == ScenarioOutcome::Status::kSkipped;
  }
  std::fprintf(out_, "%zu scenario(s): %zu passed, %zu failed, %zu skipped\n", outcomes.size(),
               passed, failed, skipped);
  for (const auto& o : outcomes) {
    if (o.status == ScenarioOutcome::Status::kFailed) {
      std::fprintf(out_, "  %s %s (%s): %s\n", paint("31", "FAILED").c_str(), o.name.c_str(),
                   o.file.c_str(), o.reason.c_str());
    }
  }
  std::fflush(out_);
  return failed ? 1 : 0;
}

}  // namespace vmci::scenario
