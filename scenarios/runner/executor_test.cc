#include "executor.h"

#include <gtest/gtest.h>

#include <chrono>

#include "loader.h"

namespace vmci::scenario {
namespace {

// Plays `steps` (a JSON array) with a host actor and two guests.
ScenarioOutcome play(const std::string& steps, const std::string& extra = "") {
  const std::string text = R"({"format": 1, "scenario": "t", )" + extra +
                           R"("actors": [{"name": "host", "role": "host"},
                                         {"name": "vm1", "role": "guest"},
                                         {"name": "vm2", "role": "guest"}],
                             "steps": )" +
                           steps + "}";
  LoadError error;
  auto scenario = parse_scenario("t.json", text, &error);
  EXPECT_TRUE(scenario.has_value()) << error.describe();
  if (!scenario) return {};
  return Executor(Progress{}).run(*scenario);
}

// The same, with a time scale.
ScenarioOutcome play_scaled(const std::string& steps, double scale, const std::string& extra) {
  const std::string text = R"({"format": 1, "scenario": "t", )" + extra +
                           R"("actors": [{"name": "host", "role": "host"}], "steps": )" + steps +
                           "}";
  LoadError error;
  auto scenario = parse_scenario("t.json", text, &error);
  EXPECT_TRUE(scenario.has_value()) << error.describe();
  if (!scenario) return {};
  RunOptions options;
  options.time_scale = scale;
  return Executor(Progress{}, options).run(*scenario);
}

// The first failed step, or a passed-looking empty one.
StepOutcome failed_step(const ScenarioOutcome& outcome) {
  for (const auto& s : outcome.steps) {
    if (s.status == StepOutcome::Status::kFailed) return s;
  }
  return {};
}

TEST(Executor, ATimeScaleStretchesEveryWaitTheScenarioTimeoutIncluded) {
  using std::chrono::milliseconds;
  using Clock = std::chrono::steady_clock;
  // Waits: 150 ms at scale 1, 450 at scale 3.
  const std::string waits = R"([{"op": "sleep", "ms": 50},
                                {"op": "expect_nothing", "actor": "host", "within_ms": 100}])";
  auto start = Clock::now();
  EXPECT_EQ(play_scaled(waits, 3, "").status, ScenarioOutcome::Status::kPassed);
  EXPECT_GE(Clock::now() - start, milliseconds(450));
  // A datagram that never comes fails at the scenario's timeout: 100 ms,
  // 300 at scale 3.
  const std::string never = R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "payload": {"text": "x"}}])";
  start = Clock::now();
  EXPECT_EQ(play_scaled(never, 3, R"("timeout_ms": 100, )").status,
            ScenarioOutcome::Status::kFailed);
  EXPECT_GE(Clock::now() - start, milliseconds(300));
}

TEST(Executor, DatagramsGoFromGuestToHost) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "hi"},
     "expect": 26},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "src": "$v",
     "payload": {"text": "hi"}},
    {"op": "expect_nothing", "actor": "host", "within_ms": 20}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
  EXPECT_EQ(outcome.steps.size(), 5u);
}

TEST(Executor, ExpectTakesTheFirstMatchAndLeavesTheOthersInOrder) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "a"}},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "b"}},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "c"}},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "payload": {"text": "b"}},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "payload": {"text": "a"},
     "timeout_ms": 0},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "payload": {"text": "c"}}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

TEST(Executor, AFailedExpectationNamesExpectedAndActual) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": {"context": "host", "resource": 12345},
     "payload": {"text": "x"}, "expect": 25},
    {"op": "get_context_id", "actor": "vm1"}
  ])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.index, "2");
  EXPECT_EQ(step.actor, "vm1");
  EXPECT_EQ(step.op, "datagram_send");
  EXPECT_EQ(step.path, "$.steps[1]");
  EXPECT_EQ(step.expected, "25");
  EXPECT_NE(step.actual.find("VMCI_ERROR_INVALID_RESOURCE"), std::string::npos) << step.actual;
  ASSERT_EQ(outcome.steps.size(), 3u);
  EXPECT_EQ(outcome.steps[2].status, StepOutcome::Status::kNotRun);
}

TEST(Executor, APayloadMismatchGivesTheOffsetAndSeed) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h",
     "payload": {"pattern": {"seed": 7, "length": 100}}},
    {"op": "expect_datagram", "actor": "host", "handle": "$h",
     "payload": {"pattern": {"seed": 7, "length": 100, "offset": 8}}, "timeout_ms": 500}
  ])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_NE(step.message.find("first difference at offset 0"), std::string::npos) << step.message;
  EXPECT_NE(step.message.find("seed 7"), std::string::npos) << step.message;
}

TEST(Executor, AsBindsOnlyWhenTheCallSucceeds) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 901, "as": "$a"},
    {"op": "datagram_create_handle", "actor": "host", "resource": 901,
     "expect": "VMCI_ERROR_DUPLICATE_ENTRY", "as": "$b"},
    {"op": "datagram_destroy_handle", "actor": "host", "handle": "$b"}
  ])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.index, "3");
  EXPECT_NE(step.message.find("variable $b is not bound"), std::string::npos) << step.message;
}

TEST(Executor, ContextValuesNameActors) {
  const auto outcome = play(R"([
    {"op": "get_context_id", "actor": "vm2", "as": "$vm2"},
    {"op": "get_context_id", "actor": "host", "expect": 2},
    {"op": "datagram_create_handle", "actor": "vm2", "resource": 77, "as": "$v2"},
    {"op": "datagram_create_handle", "actor": "host", "resource": "any", "as": "$h"},
    {"op": "datagram_send", "actor": "host", "src": "$h", "dst": {"context": "vm2", "resource": 77},
     "payload": {"zeros": 4}, "expect": 28},
    {"op": "datagram_send", "actor": "host", "src": "$h", "dst": {"context": "$vm2", "resource": 77},
     "payload": {"hex": "0102"}, "expect": 26},
    {"op": "expect_datagram", "actor": "vm2", "handle": "$v2", "payload": {"zeros": 4}},
    {"op": "expect_datagram", "actor": "vm2", "handle": "$v2", "payload": {"base64": "AQI="}}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

TEST(Executor, EventsAreCheckedByTheirPayload) {
  const auto outcome = play(R"([
    {"op": "event_subscribe", "actor": "host", "event": "CTX_REMOVED", "as": "$s"},
    {"op": "get_context_id", "actor": "vm1", "as": "$gone"},
    {"op": "disconnect", "actor": "vm1"},
    {"op": "expect_event", "actor": "host", "event": "CTX_REMOVED", "data": {"context_id": "vm1"}},
    {"op": "event_unsubscribe", "actor": "host", "subscription": "$s", "expect": "VMCI_SUCCESS"}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

TEST(Executor, StreamingWaitsOnADoorbellInsteadOfPolling) {
  const auto outcome = play(R"([
      {"op": "doorbell_create", "actor": "host", "as": "$data"},
      {"op": "qpair_alloc", "actor": "vm1", "produce_size": 4096, "consume_size": 4096, "as": "$g"},
      {"op": "qpair_alloc", "actor": "host", "handle": "$g.handle", "produce_size": 4096,
       "consume_size": 4096, "as": "$h"},
      {"op": "parallel", "branches": [
        [{"op": "qpair_write_all", "actor": "vm1", "qpair": "$g", "notify": "$data", "chunk": 1000,
          "data": {"pattern": {"seed": 4, "length": 200000}}}],
        [{"op": "qpair_read_all", "actor": "host", "qpair": "$h", "wait_doorbell": "$data",
          "length": 200000, "expect_data": {"pattern": {"seed": 4, "length": 200000}}}]
      ]}])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

TEST(Executor, QueuePairVariablesBelongToTheActorThatBoundThem) {
  const auto outcome = play(R"([
      {"op": "qpair_alloc", "actor": "vm1", "produce_size": 4096, "consume_size": 4096, "as": "$q"},
      {"op": "qpair_enqueue", "actor": "host", "qpair": "$q", "data": {"text": "x"}}])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  EXPECT_NE(failed_step(outcome).message.find("$q is vm1's queue pair, not host's"),
            std::string::npos)
      << failed_step(outcome).message;
}

TEST(Executor, VsockResultsAreCountsOrErrnoNames) {
  const auto outcome = play(R"([
      {"op": "vsock_listen", "actor": "host", "port": "any", "as": "$l"},
      {"op": "vsock_connect", "actor": "vm1", "cid": "host", "port": "$l", "as": "$c"},
      {"op": "vsock_accept", "actor": "host", "listener": "$l", "as": "$s"},
      {"op": "vsock_send", "actor": "vm1", "stream": "$c", "data": {"text": "abc"}, "expect": 3},
      {"op": "vsock_recv", "actor": "host", "stream": "$s", "size": 2, "peek": true, "expect": 2},
      {"op": "vsock_recv", "actor": "host", "stream": "$s", "size": 3, "expect_data": {"text": "abc"}},
      {"op": "vsock_connect", "actor": "vm2", "cid": "host", "port": 4, "expect": "ECONNRESET"},
      {"op": "vsock_recv", "actor": "host", "stream": "$s", "size": 1, "wait_ms": 10}])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  ASSERT_EQ(outcome.steps.size(), 8u);
  EXPECT_EQ(outcome.steps[4].actual, "2");
  EXPECT_EQ(outcome.steps[6].actual, "ECONNRESET (-104)");
  const StepOutcome last = failed_step(outcome);
  EXPECT_EQ(last.index, "8");
  EXPECT_EQ(last.expected, "a non-negative result");
  EXPECT_EQ(last.actual, "EAGAIN (-11)");
}

TEST(Executor, VsockSocketsBelongToTheActorThatMadeThemAndCloseOnce) {
  const auto others = play(R"([
      {"op": "vsock_listen", "actor": "host", "port": 80, "as": "$l"},
      {"op": "vsock_accept", "actor": "vm1", "listener": "$l"}])");
  ASSERT_EQ(others.status, ScenarioOutcome::Status::kFailed);
  EXPECT_NE(failed_step(others).message.find("$l is host's vsock listener, not vm1's"),
            std::string::npos)
      << failed_step(others).message;
  const auto kind = play(R"([
      {"op": "vsock_dgram_bind", "actor": "vm1", "port": 80, "as": "$d"},
      {"op": "vsock_send", "actor": "vm1", "stream": "$d", "data": {"text": "x"}}])");
  EXPECT_NE(failed_step(kind).message.find("$d is not a vsock stream"), std::string::npos)
      << failed_step(kind).message;
  const auto twice = play(R"([
      {"op": "vsock_dgram_bind", "actor": "vm1", "port": 80, "as": "$d"},
      {"op": "vsock_close", "actor": "vm1", "socket": "$d"},
      {"op": "vsock_close", "actor": "vm1", "socket": "$d"}])");
  EXPECT_NE(failed_step(twice).message.find("$d is closed already"), std::string::npos)
      << failed_step(twice).message;
}

TEST(Executor, AVsockCallOfAnUnconnectedActorIsEnotconnAndItsSocketsGoWithAReconnect) {
  const auto outcome = play(R"([
      {"op": "vsock_listen", "actor": "vm1", "port": 80, "as": "$l"},
      {"op": "kill", "actor": "vm1"},
      {"op": "vsock_listen", "actor": "vm1", "port": 81, "expect": "ENOTCONN"},
      {"op": "disconnect", "actor": "vm1"},
      {"op": "vsock_listen", "actor": "vm1", "port": 81, "expect": "ENOTCONN"},
      {"op": "reconnect", "actor": "vm1"},
      {"op": "vsock_accept", "actor": "vm1", "listener": "$l"}])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome last = failed_step(outcome);
  EXPECT_EQ(last.index, "7");
  EXPECT_NE(last.message.find("$l is closed"), std::string::npos) << last.message;
}

TEST(Executor, ReadAllReportsTheFirstDifferingOffsetAndTheSeed) {
  const auto outcome = play(R"([
      {"op": "qpair_alloc", "actor": "vm1", "produce_size": 4096, "consume_size": 4096, "flags": ["LOCAL"], "as": "$a"},
      {"op": "qpair_alloc", "actor": "vm1", "handle": "$a.handle", "produce_size": 4096, "consume_size": 4096,
       "flags": ["LOCAL"], "as": "$b"},
      {"op": "qpair_enqueue", "actor": "vm1", "qpair": "$a", "data": {"pattern": {"seed": 5, "length": 100}}},
      {"op": "qpair_read_all", "actor": "vm1", "qpair": "$b", "length": 100,
       "expect_data": {"pattern": {"seed": 5, "length": 100, "offset": 1}}}])");
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_NE(step.message.find("first difference at offset 0"), std::string::npos) << step.message;
  EXPECT_NE(step.message.find("pattern seed 5"), std::string::npos) << step.message;
}

TEST(Executor, TheScenarioTimeoutNamesTheRunningStep) {
  const auto outcome =
      play(R"([{"op": "get_context_id", "actor": "vm1"}, {"op": "sleep", "ms": 20000},
               {"op": "get_context_id", "actor": "vm1"}])",
           R"("timeout_ms": 1500, )");  // room for slow (sanitizer) builds to connect
  ASSERT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.op, "sleep");
  EXPECT_NE(step.message.find("timeout of 1500 ms"), std::string::npos) << step.message;
  EXPECT_LT(outcome.ms, 10000);
}

TEST(Executor, RepeatAndParallelRunTheirSteps) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v1"},
    {"op": "datagram_create_handle", "actor": "vm2", "resource": "any", "as": "$v2"},
    {"op": "parallel", "branches": [
      [{"op": "repeat", "count": 3, "steps": [
        {"op": "datagram_send", "actor": "vm1", "src": "$v1", "dst": "$h", "payload": {"text": "1"}}]}],
      [{"op": "repeat", "count": 3, "steps": [
        {"op": "datagram_send", "actor": "vm2", "src": "$v2", "dst": "$h", "payload": {"text": "2"}}]}]
    ]},
    {"op": "repeat", "count": 3, "steps": [
      {"op": "expect_datagram", "actor": "host", "handle": "$h", "src": "$v1"},
      {"op": "expect_datagram", "actor": "host", "handle": "$h", "src": "$v2"}]}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

TEST(Executor, LeftoverItemsAreListedButDoNotFail) {
  const auto outcome = play(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "z"}},
    {"op": "sleep", "ms": 100}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
  ASSERT_EQ(outcome.leftovers.size(), 1u);
  EXPECT_NE(outcome.leftovers[0].find("host: datagram"), std::string::npos);
}

}  // namespace
}  // namespace vmci::scenario

namespace vmci::scenario {
namespace {

// Plays `steps` with a host actor (a thread) and vm1 in a process of its own.
ScenarioOutcome play_with_a_process(const std::string& steps) {
  const std::string text = R"({"format": 1, "scenario": "p",
                             "actors": [{"name": "host", "role": "host"},
                                        {"name": "vm1", "role": "guest", "isolation": "process"}],
                             "steps": )" +
                           steps + "}";
  LoadError error;
  auto scenario = parse_scenario("p.json", text, &error);
  EXPECT_TRUE(scenario.has_value()) << error.describe();
  if (!scenario) return {};
  RunOptions options;
  options.actor_program = VMCI_SCENARIO_BIN;
  return Executor(Progress{}, options).run(*scenario);
}

TEST(ProcessActors, AFailedStepInTheChildShowsItsExpectedAndActual) {
  const auto outcome = play_with_a_process(R"([
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": {"context": "host", "resource": 12345},
     "payload": {"zeros": 4}, "expect": "VMCI_SUCCESS"}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.index, "2");
  EXPECT_EQ(step.expected, "VMCI_SUCCESS (0)");
  EXPECT_NE(step.actual.find("VMCI_ERROR_"), std::string::npos) << step.actual;
}

TEST(ProcessActors, VariablesCrossBetweenTheRunnerAndTheChild) {
  const auto outcome = play_with_a_process(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "get_context_id", "actor": "vm1", "as": "$cid"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": "$h", "payload": {"text": "hi"}},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "src": "$v"},
    {"op": "datagram_send", "actor": "host", "src": "$h", "dst": {"context": "vm1", "resource": 1024},
     "payload": {"text": "back"}},
    {"op": "expect_datagram", "actor": "vm1", "handle": "$v", "src": "$h",
     "payload": {"text": "back"}},
    {"op": "qpair_alloc", "actor": "vm1", "produce_size": 4096, "consume_size": 4096, "as": "$g"},
    {"op": "qpair_alloc", "actor": "host", "handle": "$g.handle", "peer": "$cid",
     "produce_size": 4096, "consume_size": 4096, "as": "$q"},
    {"op": "qpair_enqueue", "actor": "host", "qpair": "$g", "data": {"zeros": 1},
     "expect": "VMCI_SUCCESS"}
  ])");
  // The last step uses vm1's pair from the host: refused in the runner.
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.index, "10") << step.message;
  EXPECT_NE(step.message.find("vm1's queue pair, not host's"), std::string::npos) << step.message;
}

TEST(ProcessActors, AChildsVsockStreamCarriesDataBothWays) {
  const auto outcome = play_with_a_process(R"([
    {"op": "vsock_listen", "actor": "vm1", "port": "any", "as": "$l"},
    {"op": "vsock_connect", "actor": "host", "cid": "vm1", "port": "$l", "as": "$c"},
    {"op": "vsock_accept", "actor": "vm1", "listener": "$l", "as": "$s"},
    {"op": "vsock_send", "actor": "host", "stream": "$c", "data": {"pattern": {"seed": 4, "length": "100KiB"}}},
    {"op": "vsock_recv", "actor": "vm1", "stream": "$s", "size": "100KiB",
     "expect_data": {"pattern": {"seed": 4, "length": "100KiB"}}},
    {"op": "vsock_close", "actor": "vm1", "socket": "$s"},
    {"op": "vsock_recv", "actor": "host", "stream": "$c", "size": 1, "expect": 0},
    {"op": "vsock_send", "actor": "host", "stream": "$s", "data": {"zeros": 1}}
  ])");
  // The last step uses vm1's stream from the host: refused in the runner.
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kFailed);
  const StepOutcome step = failed_step(outcome);
  EXPECT_EQ(step.index, "8") << step.message;
  EXPECT_NE(step.message.find("vm1's vsock stream, not host's"), std::string::npos) << step.message;
}

TEST(ProcessActors, LeftoversComeFromTheChildsInbox) {
  const auto outcome = play_with_a_process(R"([
    {"op": "datagram_create_handle", "actor": "host", "resource": 900, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "as": "$v"},
    {"op": "datagram_send", "actor": "host", "src": "$h", "dst": "$v", "payload": {"text": "left"}},
    {"op": "sleep", "ms": 100}
  ])");
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
  ASSERT_EQ(outcome.leftovers.size(), 1u);
  EXPECT_NE(outcome.leftovers[0].find("vm1: datagram"), std::string::npos) << outcome.leftovers[0];
}

TEST(ProcessActors, AfterAKillTheHostsPairIsNotattachedAtOnce) {
  // The host's enqueue does not go through hostpeer: it reads the status
  // page hostpeer writes when it has let the dead guest go.
  std::string steps = "[";
  for (int round = 0; round < 20; ++round) {
    const std::string n = std::to_string(round);
    steps += std::string(round ? "," : "") + R"(
      {"op": "qpair_alloc", "actor": "vm1", "produce_size": 4096, "consume_size": 4096, "peer": "host", "as": "$g)" + n + R"("},
      {"op": "qpair_alloc", "actor": "host", "handle": "$g)" + n + R"(.handle", "produce_size": 4096,
       "consume_size": 4096, "as": "$p)" + n + R"("},
      {"op": "kill", "actor": "vm1"},
      {"op": "qpair_enqueue", "actor": "host", "qpair": "$p)" + n + R"(", "data": {"text": "x"},
       "expect": "VMCI_ERROR_QUEUEPAIR_NOTATTACHED"},
      {"op": "qpair_detach", "actor": "host", "qpair": "$p)" + n + R"("},
      {"op": "reconnect", "actor": "vm1"})";
  }
  steps += "]";
  const auto outcome = play_with_a_process(steps);
  EXPECT_EQ(outcome.status, ScenarioOutcome::Status::kPassed) << outcome.reason;
}

}  // namespace
}  // namespace vmci::scenario
