#include "runner/ops/op_table.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runner/loader.h"

namespace vmci::scenario {
namespace {

using nlohmann::json;

// The op a line of op_list() is about: its first word.
std::string op_of_line(const std::string& line) { return line.substr(0, line.find(' ')); }

// A value the loader takes for a key of this kind.
json sample(ValueKind kind) {
  switch (kind) {
    case ValueKind::kHandle:
      return {{"context", "host"}, {"resource", 1}};
    case ValueKind::kResource:
      return "any";
    case ValueKind::kDatagramFlags:
    case ValueKind::kDoorbellFlags:
    case ValueKind::kQueuePairFlags:
    case ValueKind::kPrivFlags:
      return json::array();
    case ValueKind::kData:
      return {{"text", "x"}};
    case ValueKind::kEventMatch:
      return {{"peer_id", "vm1"}};
    case ValueKind::kEvent:
      return "CTX_REMOVED";
    case ValueKind::kSubscription:
      return 1;
    case ValueKind::kQueuePair:
      return "$qp";
    case ValueKind::kSize:
      return "4KiB";
    case ValueKind::kChunk:
      return 1;
    case ValueKind::kContext:
      return "vm1";
    case ValueKind::kIndexes:
      return {{"tail", 0}};
    case ValueKind::kMilliseconds:
      return 1;
    case ValueKind::kCount:
      return 2;
    case ValueKind::kSteps:
      return json::array();
    case ValueKind::kBranches:
      return json::array({json::array()});
    case ValueKind::kBoolean:
      return true;
    case ValueKind::kPort:
      return 1234;
    case ValueKind::kBacklog:
      return 4;
    case ValueKind::kShutdownHow:
      return "WR";
    case ValueKind::kVsockAddress:
      return {{"cid", "host"}, {"port", 1234}};
    case ValueKind::kVsockListener:
      return "$listener";
    case ValueKind::kVsockStream:
      return "$stream";
    case ValueKind::kVsockDatagram:
    case ValueKind::kVsockSocket:
      return "$socket";
    case ValueKind::kCapture:
      return {{"$captured", {{"offset", 0}, {"type", "u8"}}}};
  }
  return nullptr;
}

// A step of `spec` with its required keys (and its optional ones too when
// `all`), each with a sample value.
json sample_step(const OpSpec& spec, bool all) {
  json step = {{"op", std::string(spec.name)}};
  if (spec.actor == ActorRule::kRequired) step["actor"] = "vm1";
  for (const KeySpec& key : spec.keys) {
    if (all || key.need == KeyNeed::kRequired) step[std::string(key.name)] = sample(key.kind);
  }
  return step;
}

// `steps` after one step (steps[0]) that binds the variables the samples
// use: a variable is used only after a step binds it.
std::optional<Scenario> load(const json& steps, LoadError* error) {
  json branches = json::array();
  for (const char* var : {"$qp", "$listener", "$stream", "$socket"}) {
    branches.push_back(json::array({{{"op", "get_context_id"}, {"actor", "vm1"}, {"as", var}}}));
  }
  json all = json::array({{{"op", "parallel"}, {"branches", branches}}});
  all.insert(all.end(), steps.begin(), steps.end());
  const json doc = {
      {"format", 1},
      {"scenario", "ops"},
      {"actors", {{{"name", "host"}, {"role", "host"}}, {{"name", "vm1"}, {"role", "guest"}}}},
      {"steps", all}};
  return parse_scenario("ops.json", doc.dump(), error);
}

// The ops of `steps` and of the steps inside them (repeat, parallel).
void collect_ops(const json& steps, std::set<std::string>* ops) {
  if (!steps.is_array()) return;
  for (const json& step : steps) {
    if (!step.is_object()) continue;
    if (step.contains("op") && step["op"].is_string()) ops->insert(step["op"].get<std::string>());
    if (step.contains("steps")) collect_ops(step["steps"], ops);
    if (step.contains("branches") && step["branches"].is_array()) {
      for (const json& branch : step["branches"]) collect_ops(branch, ops);
    }
  }
}

TEST(OpTable, EveryOpIsDeclaredOnceWithThePlayerItsKindNames) {
  std::set<std::string_view> names;
  for (const OpSpec& spec : op_table()) {
    SCOPED_TRACE(std::string(spec.name));
    EXPECT_TRUE(names.insert(spec.name).second) << "declared twice";
    EXPECT_FALSE(spec.summary.empty());
    std::set<std::string_view> keys;
    for (const KeySpec& key : spec.keys) {
      EXPECT_TRUE(keys.insert(key.name).second) << "key " << key.name << " declared twice";
      EXPECT_EQ(spec.key(key.name), &key);
    }
    const bool control = spec.kind == OpKind::kControl;
    EXPECT_EQ(spec.call != nullptr, spec.kind == OpKind::kApi);
    EXPECT_EQ(spec.play != nullptr, spec.kind == OpKind::kWait || spec.kind == OpKind::kStream);
    EXPECT_EQ(spec.control != ControlOp::kNone, control);
    EXPECT_EQ(spec.in_process == InProcess::kRunnerPlaysIt, control);
    EXPECT_TRUE(spec.actor == ActorRule::kRequired || control);
    if (spec.recorded.from != RecordedFrom::kNotRecorded &&
        spec.recorded.from != RecordedFrom::kFoldedRun) {
      EXPECT_FALSE(spec.recorded.trace_op.empty());
      EXPECT_EQ(find_recorded(spec.recorded.from, spec.recorded.trace_op), &spec);
    }
  }
  ASSERT_NE(find_op("datagram_send"), nullptr);
  EXPECT_EQ(find_op("datagram_send")->name, "datagram_send");
  EXPECT_EQ(find_op("fly"), nullptr);
}

TEST(OpTable, TheListHasALineForEveryOpTheLoaderTakesAndTheLoaderNoOther) {
  const std::vector<std::string> lines = op_list();
  ASSERT_EQ(lines.size(), op_table().size());
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string name = op_of_line(lines[i]);
    SCOPED_TRACE(lines[i]);
    const OpSpec* spec = find_op(name);
    ASSERT_NE(spec, nullptr);
    EXPECT_EQ(spec, &op_table()[i]);
    EXPECT_NE(lines[i].find(std::string(spec->summary)), std::string::npos);
    for (const KeySpec& key : spec->keys) {
      const std::string shown = key.need == KeyNeed::kRequired ? " " + std::string(key.name)
                                                               : " [" + std::string(key.name);
      EXPECT_NE(lines[i].find(shown), std::string::npos) << key.name;
    }
    // The loader takes the op with its required keys, and with all of them.
    for (bool all : {false, true}) {
      LoadError error;
      EXPECT_TRUE(load(json::array({sample_step(*spec, all)}), &error).has_value())
          << error.describe();
    }
    // And refuses it without any one of the required ones.
    for (const KeySpec& key : spec->keys) {
      if (key.need != KeyNeed::kRequired) continue;
      json step = sample_step(*spec, true);
      step.erase(std::string(key.name));
      LoadError error;
      EXPECT_FALSE(load(json::array({step}), &error).has_value()) << key.name;
      EXPECT_NE(error.message.find("needs '" + std::string(key.name) + "'"), std::string::npos)
          << error.describe();
    }
  }
  // An op that is not listed does not load.
  LoadError error;
  EXPECT_FALSE(load(json::array({{{"op", "vsock_fly"}, {"actor", "vm1"}}}), &error).has_value());
  EXPECT_EQ(error.path, "$.steps[1].op");
  EXPECT_NE(error.message.find("unknown op"), std::string::npos);
}

TEST(OpTable, EveryOpOfTheCorpusIsInTheTable) {
  std::set<std::string> listed;
  for (const std::string& line : op_list()) listed.insert(op_of_line(line));
  std::map<std::string, std::string> used;  // op -> a file that uses it
  size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(VMCI_SCENARIO_CORPUS)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    ++files;
    std::ifstream in(entry.path());
    const json doc = json::parse(in, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << entry.path();
    std::set<std::string> ops;
    if (doc.is_object() && doc.contains("steps")) collect_ops(doc["steps"], &ops);
    for (const std::string& op : ops) used.emplace(op, entry.path().string());
  }
  EXPECT_GT(files, 50u) << "the corpus is not where it was: " << VMCI_SCENARIO_CORPUS;
  for (const auto& [op, file] : used) {
    EXPECT_NE(find_op(op), nullptr) << op << " (" << file << ") is not in the op table";
    EXPECT_TRUE(listed.count(op)) << op << " (" << file << ") is not in the op list";
  }
  EXPECT_GT(used.size(), 30u);
}

TEST(OpTable, VmciScenarioOpsPrintsTheList) {
  FILE* out = ::popen(VMCI_SCENARIO_BIN " ops", "r");
  ASSERT_NE(out, nullptr);
  std::string text;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, out)) text.append(buffer, n);
  EXPECT_EQ(::pclose(out), 0);
  std::string expected;
  for (const std::string& line : op_list()) expected += line + "\n";
  EXPECT_EQ(text, expected);
}

TEST(OpTable, TracedCallsCallbacksAndClosesFindTheirOps) {
  struct Case {
    RecordedFrom from;
    const char* trace_op;
    const char* op;  // null: none
  };
  const Case cases[] = {
      {RecordedFrom::kCall, "datagram_send", "datagram_send"},
      {RecordedFrom::kCall, "qpair_alloc", "qpair_alloc"},
      {RecordedFrom::kCall, "hold_callbacks", "hold_callbacks"},
      {RecordedFrom::kCall, "qpair_enqueue", nullptr},  // a data call
      {RecordedFrom::kDataCall, "qpair_enqueue", "qpair_enqueue"},
      {RecordedFrom::kDataCall, "qpair_get_consume_indexes", "qpair_get_consume_indexes"},
      {RecordedFrom::kDataCall, "qpair_alloc", nullptr},
      {RecordedFrom::kCallback, "datagram", "expect_datagram"},
      {RecordedFrom::kCallback, "doorbell", "expect_doorbell"},
      {RecordedFrom::kCallback, "event", "expect_event"},
      {RecordedFrom::kClose, "kill", "kill"},
      {RecordedFrom::kClose, "disconnect", "disconnect"},
      {RecordedFrom::kCall, "qpair_write_all", nullptr},  // a runner's op, never traced
      {RecordedFrom::kNotRecorded, "", nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.trace_op);
    const OpSpec* spec = find_recorded(c.from, c.trace_op);
    if (c.op == nullptr) {
      EXPECT_EQ(spec, nullptr);
    } else {
      ASSERT_NE(spec, nullptr);
      EXPECT_EQ(spec->name, c.op);
    }
  }
}

}  // namespace
}  // namespace vmci::scenario
