// The ops that are not one kind of resource's: the actor's own context id;
// the waits, which take what arrived in an actor's inbox (datagrams,
// doorbell notifications, events) or hold its callbacks; and the control
// ops, which the executor plays itself (executor.cc, Run::control_op).
#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;
using enum KeyNeed;

ApiResult get_context_id(OpContext&, const Step&, Actor& a) {
  const vmci_id cid = a.driver()->get_context_id();
  return {cid, Value{.number = cid}};
}

// A handle an expectation names matches a datagram's when the resources
// are equal and the expected context is the same or "invalid" (any).
bool handle_matches(const vmci_handle& expected, const vmci_handle& actual) {
  return expected.resource == actual.resource &&
         (expected.context == actual.context || expected.context == VMCI_INVALID_ID);
}

std::string inbox_listing(Actor& actor) {
  const auto items = actor.inbox().contents();
  if (items.empty()) return "the inbox is empty";
  std::string text = "the inbox holds:";
  for (const auto& item : items) text += " [" + item.describe() + "]";
  return text;
}

// Once an item is taken, hostpeer has seen its acknowledgement (sent as its
// callback started): what the next steps observe does not depend on timing.
void settle(Actor& a) {
  if (a.driver() != nullptr) a.driver()->sync();
}

void hold_callbacks(OpContext&, const Step& step, Actor& a, StepOutcome&) {
  if (a.driver() == nullptr) fail_step(step.actor + " is not connected");
  a.driver()->hold_callbacks();
}

void release_callbacks(OpContext&, const Step& step, Actor& a, StepOutcome&) {
  if (a.driver() == nullptr) fail_step(step.actor + " is not connected");
  a.driver()->release_callbacks();
}

void expect_nothing(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  const int64_t within = step.args.value("within_ms", int64_t{200});
  const auto deadline = std::min(Clock::now() + run.scaled(within), run.deadline());
  if (auto item = a.inbox().peek_any(deadline)) {
    fail_step("something arrived", "nothing", item->describe());
  }
  out.actual = "nothing";
}

void expect_datagram(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  const nlohmann::json& args = step.args;
  const auto deadline = run.step_deadline(step, kWaitTimeoutMs);
  const vmci_handle to = run.handle(args["handle"]);
  std::optional<vmci_handle> from;
  if (args.contains("src")) from = run.handle(args["src"]);
  std::optional<Data> payload;
  if (args.contains("payload")) payload = data_of(run, args["payload"]);
  std::string expected = "a datagram to " + proto::to_string(to);
  if (from) expected += " from " + proto::to_string(*from);
  if (payload) expected += " with " + payload->describe();
  auto item = a.inbox().take(
      [&](const InboxItem& i) {
        return i.kind == InboxItem::Kind::kDatagram && handle_matches(to, i.dst) &&
               (!from || proto::same_handle(*from, i.src)) &&
               (!payload || !compare(*payload, i.payload));
      },
      deadline);
  if (!item) {
    // Say how the nearest candidate differed, when there is one.
    std::string why = "no matching datagram arrived in time; " + inbox_listing(a);
    for (const auto& i : a.inbox().contents()) {
      if (i.kind == InboxItem::Kind::kDatagram && handle_matches(to, i.dst) && payload) {
        if (auto m = compare(*payload, i.payload)) why += "; payload: " + m->message;
        break;
      }
    }
    fail_step(why, expected, "nothing matching");
  }
  out.actual = item->describe();
  settle(a);
  capture(run, step, item->payload);
}

void expect_doorbell(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  const auto deadline = run.step_deadline(step, kWaitTimeoutMs);
  const vmci_handle doorbell = run.handle(step.args["handle"]);
  auto rung = [&](const InboxItem& i) {
    return i.kind == InboxItem::Kind::kDoorbell && proto::same_handle(doorbell, i.dst);
  };
  auto item = a.inbox().take(rung, deadline);
  if (!item) {
    fail_step("the doorbell was not rung in time; " + inbox_listing(a),
              "doorbell " + proto::to_string(doorbell) + " rung", "nothing");
  }
  int taken = 1;  // and every other queued notification of it
  while (a.inbox().take(rung, Clock::now())) ++taken;
  out.actual = item->describe() + (taken > 1 ? " (" + std::to_string(taken) + " times)" : "");
  settle(a);
}

void expect_event(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  const nlohmann::json& args = step.args;
  const auto deadline = run.step_deadline(step, kWaitTimeoutMs);
  const uint32_t event = *proto::event_from_name(args["event"].get<std::string>());
  const nlohmann::json data = args.value("data", nlohmann::json::object());
  std::optional<vmci_id> cid, peer;
  std::optional<vmci_handle> qp;
  if (data.contains("context_id")) cid = run.context(data["context_id"]);
  if (data.contains("peer_id")) peer = run.context(data["peer_id"]);
  if (data.contains("handle")) qp = run.handle(data["handle"]);
  std::string expected = "event " + args["event"].get<std::string>();
  if (cid) expected += " for context " + std::to_string(*cid);
  auto item = a.inbox().take(
      [&](const InboxItem& i) {
        return i.kind == InboxItem::Kind::kEvent && i.event == event &&
               (!cid || i.context_id == *cid) && (!peer || i.peer_id == *peer) &&
               (!qp || proto::same_handle(*qp, i.qp));
      },
      deadline);
  if (!item) {
    fail_step("no matching event arrived in time; " + inbox_listing(a), expected, "nothing");
  }
  out.actual = item->describe();
  settle(a);
}

}  // namespace

std::vector<OpSpec> control_ops() {
  return {
      {.name = "get_context_id",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary = "the actor's context id; binds it",
       .call = get_context_id,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "get_context_id"}},
      {.name = "expect_datagram",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle},
                {"src", kHandle, kOptional},
                {"payload", kData, kOptional},
                {"capture", kCapture, kOptional}},
       .summary = "takes one datagram to handle (from src, with payload) from the inbox and "
                  "captures fields of its payload",
       .play = expect_datagram,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCallback, "datagram"}},
      {.name = "expect_doorbell",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle}},
       .summary = "takes every queued notification (at least one) of the actor's doorbell",
       .play = expect_doorbell,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCallback, "doorbell"}},
      {.name = "expect_event",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {{"event", kEvent}, {"data", kEventMatch, kOptional}},
       .summary = "takes one event whose payload fields match data from the inbox",
       .play = expect_event,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCallback, "event"}},
      {.name = "expect_nothing",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {{"within_ms", kMilliseconds, kOptional}},
       .summary = "fails if the inbox holds an item or one arrives within within_ms (200)",
       .play = expect_nothing,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {}},
      {.name = "hold_callbacks",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary = "the actor's driver stops running callbacks; what arrives waits in the driver",
       .play = hold_callbacks,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "hold_callbacks"}},
      {.name = "release_callbacks",
       .kind = OpKind::kWait,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary = "callbacks run again; what waited is delivered",
       .play = release_callbacks,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "release_callbacks"}},
      {.name = "sleep",
       .kind = OpKind::kControl,
       .actor = ActorRule::kForbidden,
       .keys = {{"ms", kMilliseconds}},
       .summary = "waits ms",
       .control = ControlOp::kSleep,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {}},
      {.name = "parallel",
       .kind = OpKind::kControl,
       .actor = ActorRule::kForbidden,
       .keys = {{"branches", kBranches}},
       .summary = "plays each branch (an array of steps) concurrently; fails when any fails",
       .control = ControlOp::kParallel,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {}},
      {.name = "repeat",
       .kind = OpKind::kControl,
       .actor = ActorRule::kForbidden,
       .keys = {{"count", kCount}, {"steps", kSteps}},
       .summary = "plays steps count times",
       .control = ControlOp::kRepeat,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {RecordedFrom::kFoldedRun, {}}},
      {.name = "kill",
       .kind = OpKind::kControl,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary = "ends the actor abruptly, with no detach or destroy (a process actor: SIGKILL)",
       .control = ControlOp::kKill,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {RecordedFrom::kClose, "kill"}},
      {.name = "disconnect",
       .kind = OpKind::kControl,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary = "closes the actor's connection cleanly",
       .control = ControlOp::kDisconnect,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {RecordedFrom::kClose, "disconnect"}},
      {.name = "reconnect",
       .kind = OpKind::kControl,
       .actor = ActorRule::kRequired,
       .keys = {},
       .summary =
           "a new connection for the actor; a guest gets a new context unless it asks for one",
       .control = ControlOp::kReconnect,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {}},
      {.name = "restart_hostpeer",
       .kind = OpKind::kControl,
       .actor = ActorRule::kForbidden,
       .keys = {},
       .summary = "stops the runner's hostpeer abruptly and starts it again on the same socket",
       .control = ControlOp::kRestartHostpeer,
       .in_process = InProcess::kRunnerPlaysIt,
       .recorded = {}},
  };
}

}  // namespace vmci::scenario
