// The event ops: subscriptions (expect_event is with the other waits, in
// control_ops.cc).
#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;

ApiResult event_subscribe(OpContext&, const Step& step, Actor& a) {
  vmci_id id = 0;
  const int status = a.driver()->event_subscribe(
      *proto::event_from_name(step.args["event"].get<std::string>()), a.event_callback(), &id);
  return {status, Value{.number = id}};
}

ApiResult event_unsubscribe(OpContext& run, const Step& step, Actor& a) {
  const nlohmann::json& sub = step.args["subscription"];
  vmci_id id = 0;
  if (sub.is_string()) {
    const Value value = run.variable(sub);
    if (value.is_handle) fail_step(sub.get<std::string>() + " is a handle, not a subscription id");
    id = static_cast<vmci_id>(value.number);
  } else {
    id = sub.get<vmci_id>();
  }
  return {a.driver()->event_unsubscribe(id), {}};
}

}  // namespace

std::vector<OpSpec> event_ops() {
  return {
      {.name = "event_subscribe",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"event", kEvent}},
       .summary = "subscribes the actor's inbox to an event; status, binds the subscription id",
       .call = event_subscribe,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "event_subscribe"}},
      {.name = "event_unsubscribe",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"subscription", kSubscription}},
       .summary = "ends a subscription; status",
       .call = event_unsubscribe,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "event_unsubscribe"}},
  };
}

}  // namespace vmci::scenario
