// vmci-scenario: plays JSON scenarios (docs/SCENARIO-FORMAT.md)
// against an embedded hostpeer, a running one, or a program that serves
// hostpeer's socket (a device proxy).
//
//   vmci-scenario run FILE|DIR... [--connect SOCKET [--against NAME]] [--only NAME]
//                     [--skip NAME] [--report FILE] [--junit FILE] [--kill-matrix]
//   vmci-scenario list FILE|DIR...
//   vmci-scenario record TRACE... -o FILE [--name NAME] [--actor NAME]
//   vmci-scenario ops                 the ops a step may use, one line each
//
// A directory means its *.json files; one that is valid JSON but plainly
// no scenario (a --report file) is skipped with a note.
//
// Exit status: 0 all passed or skipped, 1 a scenario failed, 2 a file is not
// a valid scenario (nothing is run; the reports still name each file that
// does not load), 3 the runner itself could not work.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "record/recorder.h"
#include "record/trace_reader.h"
#include "runner/executor.h"
#include "runner/loader.h"
#include "runner/ops/op_table.h"
#include "runner/report.h"

namespace fs = std::filesystem;
using namespace vmci::scenario;

namespace {

// A file to load, and whether it was found by walking a directory (then a
// JSON file that is no scenario, a report say, is skipped with a note).
struct Input {
  std::string path;
  bool found_in_directory = false;
};

// Every *.json under the given files and directories, sorted per argument.
bool collect(const std::vector<std::string>& inputs, std::vector<Input>* files) {
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::recursive_directory_iterator(input, ec)) {
        if (entry.is_regular_file() && entry.path().extension() == ".json") {
          found.push_back(entry.path().string());
        }
      }
      std::sort(found.begin(), found.end());
      for (auto& path : found) files->push_back({std::move(path), true});
    } else if (fs::exists(input, ec)) {
      files->push_back({input, false});
    } else {
      std::fprintf(stderr, "vmci-scenario: %s: no such file or directory\n", input.c_str());
      return false;
    }
  }
  return true;
}

// A JSON file that is plainly no scenario: valid JSON, but not an object
// with any of a scenario's keys "scenario", "actors" and "steps" (a
// `--report` file, a configuration). A file that is not JSON at all may be
// a broken scenario, and is not skipped.
bool plainly_not_a_scenario(const std::string& path) {
  std::ifstream in(path);
  const auto doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) return false;
  return !doc.is_object() ||
         (!doc.contains("scenario") && !doc.contains("actors") && !doc.contains("steps"));
}

bool selected(const Scenario& s, const std::vector<std::string>& only,
              const std::vector<std::string>& skip) {
  if (!only.empty() && std::find(only.begin(), only.end(), s.name) == only.end()) return false;
  return std::find(skip.begin(), skip.end(), s.name) == skip.end();
}

void list_steps(const std::vector<Step>& steps, int depth) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    std::printf("%*s%zu. %s%s%s%s\n", 4 + 2 * depth, "", i + 1, s.op.c_str(),
                s.actor.empty() ? "" : (" " + s.actor).c_str(), s.note.empty() ? "" : "  # ",
                s.note.c_str());
    list_steps(s.steps, depth + 1);
    for (const auto& branch : s.branches) list_steps(branch, depth + 1);
  }
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "vmci-scenario: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

// The crash matrix: one play per (process actor, cut point: kill_points()).
int play_kill_matrix(const std::vector<Scenario>& scenarios, const RunOptions& base,
                     const std::string& report_file, const std::string& junit_file) {
  std::vector<ScenarioOutcome> outcomes;
  int cuts = 0, failed = 0;
  for (const auto& s : scenarios) {
    std::printf("▶ %s: the crash matrix\n", s.name.c_str());
    bool any = false;
    for (const auto& actor : s.actors) {
      if (!actor.process) continue;
      any = true;
      for (const KillPoint& point : kill_points(s, actor.name)) {
        RunOptions options = base;
        options.kill = point;
        ScenarioOutcome outcome = Executor(Progress{}, options).run(s);
        const std::string cut = point.describe();
        outcome.name = s.name + " [" + cut + "]";
        ++cuts;
        const bool ok = outcome.status == ScenarioOutcome::Status::kPassed ||
                        outcome.status == ScenarioOutcome::Status::kSkipped;
        if (!ok) ++failed;
        std::printf("  %s  %s  (%.0f ms)%s%s\n", ok ? "ok  " : "FAIL", cut.c_str(), outcome.ms,
                    ok ? "" : "\n       ", ok ? "" : outcome.reason.c_str());
        std::fflush(stdout);
        outcomes.push_back(std::move(outcome));
      }
    }
    if (!any) std::printf("  no process actor: nothing to kill\n");
  }
  std::printf("\n%d cut(s): %d passed, %d failed\n", cuts, cuts - failed, failed);
  int status = failed == 0 ? 0 : 1;
  if (!report_file.empty() && !write_file(report_file, json_report(outcomes).dump(2) + "\n")) status = 3;
  if (!junit_file.empty() && !write_file(junit_file, junit_report(outcomes))) status = 3;
  return status;
}

// A scenario name from a file name: "echo session.json" -> "echo-session".
std::string name_from_path(const std::string& path) {
  std::string name;
  for (char c : fs::path(path).stem().string()) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') ||
                    (!name.empty() && (lower == '_' || lower == '-'));
    name += ok ? lower : (name.empty() ? 'r' : '-');
  }
  return name.empty() ? "recorded" : name;
}

int record(const std::vector<std::string>& traces, const std::string& output, std::string name,
           const std::string& actor) {
  std::vector<TraceLine> lines;
  std::string error;
  if (!read_traces(traces, &lines, &error)) {
    std::fprintf(stderr, "vmci-scenario: %s\n", error.c_str());
    return 2;
  }
  RecordOptions options;
  options.name = name.empty() ? name_from_path(output) : std::move(name);
  options.actor = actor;
  Recording recording;
  if (!record_scenario(lines, options, &recording, &error)) {
    std::fprintf(stderr, "vmci-scenario: %s\n", error.c_str());
    return 2;
  }
  if (!write_file(output, recording.scenario.dump(2) + "\n")) return 3;
  // What was written must load: it is the runner's own input.
  LoadError load_error;
  if (!load_scenario(output, &load_error)) {
    std::fprintf(stderr, "vmci-scenario: the recorded scenario does not load: %s\n",
                 load_error.describe().c_str());
    return 3;
  }
  std::printf("recorded %zu line(s) from %zu trace(s): %zu actor(s), %zu step(s) (%zu poll(s) "
              "that found nothing left out) -> %s\n",
              lines.size(), traces.size(), recording.scenario["actors"].size(), recording.steps,
              recording.dropped_polls, output.c_str());
  for (const auto& warning : recording.warnings) {
    std::printf("warning: %s\n", warning.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"vmci-scenario: plays VMCI scenarios against an embedded hostpeer or a running one"};
  app.set_version_flag("--version", "vmci-scenario " VMCI_VERSION);
  app.require_subcommand(1);
  app.footer(
      "The format, op by op: docs/SCENARIO-FORMAT.md (installed under share/doc/vmci-hostpeer). "
      "`vmci-scenario ops` lists the ops with their keys; `vmci-scenario SUBCOMMAND --help` "
      "the options of each.");
  std::vector<std::string> inputs, only, skip;
  auto* run = app.add_subcommand("run", "play scenarios");
  run->add_option("paths", inputs,
                  "scenario files or directories (a directory's JSON files that are plainly no "
                  "scenario, such as a --report file, are skipped with a note)")
      ->required();
  run->add_option("--only", only, "play only the scenario with this name (repeatable)");
  run->add_option("--skip", skip, "do not play the scenario with this name (repeatable)");
  std::string report_file, junit_file;
  RunOptions run_options;
  bool kill_matrix = false;
  run->add_flag("--kill-matrix", kill_matrix,
                "the crash matrix: play each scenario once per (process actor, cut point), killing "
                "that actor before a top-level step, before a step of a parallel's branch, or "
                "during a stream, and check what the others saw and that nothing leaks");
  run->add_option("--connect", run_options.connect_socket,
                  "play against the hostpeer already running on this socket (scenarios that "
                  "set up or restart their own hostpeer are skipped)");
  run->add_option("--against", run_options.against,
                  "with --connect: the program serving SOCKET (a device proxy); scenarios whose "
                  "\"played_against\" names it are played, those naming another are skipped")
      ->needs("--connect");
  run->add_option("--hostpeer-trace", run_options.hostpeer_trace,
                  "the hostpeer that the runner starts appends its trace (every request, delivery "
                  "and peer) to FILE; with VMCI_TRACE=FILE for the actors, a session to record");
  run->add_option("--time-scale", run_options.time_scale,
                  "multiply every time the runner waits by this (>= 1), for slow builds "
                  "(default: $VMCI_TIME_SCALE, else 1)")
      ->check(CLI::PositiveNumber);
  run->add_option("--report", report_file,
                  "write a JSON report of every step to FILE (also when a file does not load)");
  run->add_option("--junit", junit_file,
                  "write a JUnit XML report to FILE (also when a file does not load: a failed "
                  "test case names the error)");
  auto* list = app.add_subcommand("list", "list scenarios and their steps");
  list->add_option("paths", inputs, "scenario files or directories")->required();
  list->add_option("--only", only, "list only the scenario with this name");
  list->add_option("--skip", skip, "do not list the scenario with this name");
  std::vector<std::string> traces;
  std::string record_output, record_name, record_actor;
  auto* rec = app.add_subcommand(
      "record", "merge traces (VMCI_TRACE, vmci-hostpeer --trace) into a scenario that replays them");
  rec->add_option("traces", traces, "trace files (JSON Lines)")->required();
  rec->add_option("-o,--output", record_output, "the scenario file to write")->required();
  rec->add_option("--name", record_name, "the scenario's name (default: from the file name)");
  rec->add_option("--actor", record_actor,
                  "write this actor alone (vm1, host, ...: the names the recording gives), with "
                  "what the others made as the values it had, to play against the others' "
                  "program (a new build of a proxy) with run --connect SOCKET");
  auto* ops = app.add_subcommand(
      "ops", "list the ops a scenario step may use: name, keys (optional ones in brackets), "
             "what it does");
  // A process actor's child, started by the runner itself (process_actor.h).
  std::string actor_spec;
  auto* serve = app.add_subcommand("serve-actor", "");
  serve->group("");  // hidden from --help
  serve->add_option("spec", actor_spec)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (rec->parsed()) return record(traces, record_output, record_name, record_actor);

  if (ops->parsed()) {
    for (const std::string& line : op_list()) std::printf("%s\n", line.c_str());
    return 0;
  }

  if (serve->parsed()) {
    const auto spec = nlohmann::json::parse(actor_spec, nullptr, false);
    if (spec.is_discarded()) return 2;
    return Executor::serve_actor(spec, 3, 4);
  }

  std::vector<Input> files;
  if (!collect(inputs, &files)) return 2;
  // Every file is loaded and checked before anything runs; each file that
  // does not load is a failed test case of the reports.
  std::vector<Scenario> scenarios;
  std::vector<ScenarioOutcome> load_failures;
  size_t skipped_files = 0;
  for (const auto& file : files) {
    if (file.found_in_directory && plainly_not_a_scenario(file.path)) {
      std::fprintf(stderr,
                   "vmci-scenario: note: %s is not a scenario (no \"scenario\", "
                   "\"actors\" or \"steps\"): skipped\n",
                   file.path.c_str());
      ++skipped_files;
      continue;
    }
    LoadError error;
    auto scenario = load_scenario(file.path, &error);
    if (!scenario) {
      std::fprintf(stderr, "vmci-scenario: invalid scenario: %s\n", error.describe().c_str());
      ScenarioOutcome failure;
      failure.status = ScenarioOutcome::Status::kFailed;
      failure.name = fs::path(file.path).stem().string();
      failure.file = file.path;
      failure.reason = "the file does not load: " + error.describe();
      load_failures.push_back(std::move(failure));
      continue;
    }
    if (selected(*scenario, only, skip)) scenarios.push_back(std::move(*scenario));
  }
  if (!load_failures.empty()) {
    if (run->parsed()) {
      if (!report_file.empty()) write_file(report_file, json_report(load_failures).dump(2) + "\n");
      if (!junit_file.empty()) write_file(junit_file, junit_report(load_failures));
    }
    return 2;
  }
  if (scenarios.empty() && files.size() == skipped_files) {
    std::fprintf(stderr, "vmci-scenario: no scenario files found\n");
    return 2;
  }

  if (list->parsed()) {
    for (const auto& s : scenarios) {
      std::printf("%s  (%s, %zu actors)\n", s.name.c_str(), s.file.c_str(), s.actors.size());
      if (!s.description.empty()) std::printf("    %s\n", s.description.c_str());
      list_steps(s.steps, 0);
    }
    return 0;
  }

  // Process actors are children: they take the scale from the environment.
  if (run_options.time_scale > 0) {
    ::setenv("VMCI_TIME_SCALE", std::to_string(run_options.time_scale).c_str(), 1);
  }
  if (kill_matrix) return play_kill_matrix(scenarios, run_options, report_file, junit_file);

  ConsoleReport report(stdout);
  Executor executor(Progress{[&](const StepOutcome& step) { report.step_started(step); },
                             [&](const StepOutcome& step) { report.step_finished(step); }},
                    run_options);
  std::vector<ScenarioOutcome> outcomes;
  for (const auto& s : scenarios) {
    report.scenario_started(s);
    outcomes.push_back(executor.run(s));
    report.scenario_finished(outcomes.back());
  }
  int status = report.summary(outcomes);
  if (!report_file.empty() && !write_file(report_file, json_report(outcomes).dump(2) + "\n")) {
    status = 3;
  }
  if (!junit_file.empty() && !write_file(junit_file, junit_report(outcomes))) status = 3;
  return status;
}
