#include "report.h"

#include <unistd.h>

namespace vmci::scenario {
namespace {

const char* status_name(StepOutcome::Status status) {
  switch (status) {
    case StepOutcome::Status::kPassed:
      return "passed";
    case StepOutcome::Status::kFailed:
      return "failed";
    case StepOutcome::Status::kNotRun:
      return "not run";
  }
  return "?";
}

const char* status_name(ScenarioOutcome::Status status) {
  switch (status) {
    case ScenarioOutcome::Status::kPassed:
      return "passed";
    case ScenarioOutcome::Status::kFailed:
      return "failed";
    case ScenarioOutcome::Status::kSkipped:
      return "skipped";
    case ScenarioOutcome::Status::kError:
      return "error";
  }
  return "?";
}

std::string xml_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string step_title(const StepOutcome& step) {
  std::string title = step.index + " ";
  if (!step.actor.empty()) title += step.actor + " ";
  return title + step.op;
}

}  // namespace

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

void ConsoleReport::step_started(const StepOutcome& step) {
  if (!terminal_) return;
  std::string line = "  " + paint("33", "... ") + " " + step_title(step);
  if (!step.note.empty()) line += "  " + paint("36", "# " + step.note);
  std::fprintf(out_, "%s%s", live_line_ ? "\r\033[K" : "", line.c_str());
  live_line_ = true;
  std::fflush(out_);
}

void ConsoleReport::step_finished(const StepOutcome& step) {
  if (live_line_) std::fprintf(out_, "\r\033[K");
  live_line_ = false;
  const bool passed = step.status == StepOutcome::Status::kPassed;
  const std::string mark = passed ? paint("32", "ok  ") : paint("31", "FAIL");
  std::string line = "  " + mark + " " + step_title(step);
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
    case ScenarioOutcome::Status::kError:
      std::fprintf(out_, "  %s: %s\n\n", paint("31", "RUNNER ERROR").c_str(),
                   outcome.reason.c_str());
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
  size_t passed = 0, failed = 0, skipped = 0, errors = 0, steps = 0;
  for (const auto& o : outcomes) {
    passed += o.status == ScenarioOutcome::Status::kPassed;
    failed += o.status == ScenarioOutcome::Status::kFailed;
    skipped += o.status == ScenarioOutcome::Status::kSkipped;
    errors += o.status == ScenarioOutcome::Status::kError;
    for (const auto& s : o.steps) steps += s.status == StepOutcome::Status::kPassed;
  }
  std::string line = std::to_string(outcomes.size()) + " scenario(s): " + std::to_string(passed) +
                     " passed, " + std::to_string(failed) + " failed, " + std::to_string(skipped) +
                     " skipped";
  if (errors) line += ", " + std::to_string(errors) + " not played (runner error)";
  line += "; " + std::to_string(steps) + " step(s) passed";
  std::fprintf(out_, "%s\n", paint(failed || errors ? "31" : "32", line).c_str());
  for (const auto& o : outcomes) {
    if (o.status == ScenarioOutcome::Status::kFailed ||
        o.status == ScenarioOutcome::Status::kError) {
      const char* what = o.status == ScenarioOutcome::Status::kFailed ? "FAILED" : "RUNNER ERROR";
      std::fprintf(out_, "  %s %s (%s): %s\n", paint("31", what).c_str(), o.name.c_str(),
                   o.file.c_str(), o.reason.c_str());
    }
  }
  std::fflush(out_);
  return errors ? 3 : failed ? 1 : 0;
}

nlohmann::json json_report(const std::vector<ScenarioOutcome>& outcomes) {
  nlohmann::json scenarios = nlohmann::json::array();
  for (const auto& o : outcomes) {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& st : o.steps) {
      nlohmann::json step = {{"index", st.index},
                             {"path", st.path},
                             {"op", st.op},
                             {"status", status_name(st.status)},
                             {"ms", st.ms}};
      if (!st.actor.empty()) step["actor"] = st.actor;
      if (!st.note.empty()) step["note"] = st.note;
      if (!st.expected.empty()) step["expected"] = st.expected;
      if (!st.actual.empty()) step["actual"] = st.actual;
      if (!st.message.empty()) step["message"] = st.message;
      steps.push_back(std::move(step));
    }
    nlohmann::json scenario = {{"scenario", o.name},
                               {"file", o.file},
                               {"status", status_name(o.status)},
                               {"ms", o.ms},
                               {"steps", std::move(steps)},
                               {"leftovers", o.leftovers}};
    if (!o.reason.empty()) scenario["reason"] = o.reason;
    scenarios.push_back(std::move(scenario));
  }
  return {{"format", 1}, {"scenarios", std::move(scenarios)}};
}

std::string junit_report(const std::vector<ScenarioOutcome>& outcomes) {
  size_t failures = 0, errors = 0, skipped = 0;
  double ms = 0;
  for (const auto& o : outcomes) {
    failures += o.status == ScenarioOutcome::Status::kFailed;
    errors += o.status == ScenarioOutcome::Status::kError;
    skipped += o.status == ScenarioOutcome::Status::kSkipped;
    ms += o.ms;
  }
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += "<testsuite name=\"vmci-scenario\" tests=\"" + std::to_string(outcomes.size()) +
         "\" failures=\"" + std::to_string(failures) + "\" errors=\"" + std::to_string(errors) +
         "\" skipped=\"" + std::to_string(skipped) + "\" time=\"" + std::to_string(ms / 1000) +
         "\">\n";
  for (const auto& o : outcomes) {
    xml += "  <testcase classname=\"" + xml_escape(o.file) + "\" name=\"" + xml_escape(o.name) +
           "\" time=\"" + std::to_string(o.ms / 1000) + "\"";
    if (o.status == ScenarioOutcome::Status::kPassed) {
      xml += "/>\n";
      continue;
    }
    xml += ">\n";
    if (o.status == ScenarioOutcome::Status::kSkipped) {
      xml += "    <skipped message=\"" + xml_escape(o.reason) + "\"/>\n";
    } else {
      const char* tag = o.status == ScenarioOutcome::Status::kFailed ? "failure" : "error";
      std::string details;
      for (const auto& st : o.steps) {
        if (st.status != StepOutcome::Status::kFailed) continue;
        details += "step " + st.index + " at " + st.path + ": " + st.op + "\n";
        if (!st.expected.empty()) details += "expected: " + st.expected + "\n";
        if (!st.actual.empty()) details += "actual:   " + st.actual + "\n";
        if (!st.message.empty()) details += st.message + "\n";
      }
      xml += "    <" + std::string(tag) + " message=\"" + xml_escape(o.reason) + "\">" +
             xml_escape(details) + "</" + tag + ">\n";
    }
    xml += "  </testcase>\n";
  }
  return xml + "</testsuite>\n";
}

}  // namespace vmci::scenario
