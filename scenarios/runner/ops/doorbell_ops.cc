// The doorbell ops (expect_doorbell is with the other waits, in
// control_ops.cc; the streaming ops' `notify` and `wait_doorbell` in
// queue_pair_ops.cc).
#include <memory>

#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;
using enum KeyNeed;

ApiResult doorbell_create(OpContext& run, const Step& step, Actor& a) {
  vmci_handle h = VMCI_INVALID_HANDLE;
  if (step.args.contains("handle")) h = run.handle(step.args["handle"]);
  auto slot = std::make_shared<Actor::DoorbellSlot>();
  const int status = a.driver()->doorbell_create(
      &h, flags_of(step, "flags"), flags_of(step, "priv_flags"), a.doorbell_callback(slot));
  slot->promise.set_value(h);
  return {status, Value{.is_handle = true, .handle = h}};
}

ApiResult doorbell_destroy(OpContext& run, const Step& step, Actor& a) {
  return {a.driver()->doorbell_destroy(run.handle(step.args["handle"])), {}};
}

ApiResult doorbell_notify(OpContext& run, const Step& step, Actor& a) {
  return {
      a.driver()->doorbell_notify(run.handle(step.args["handle"]), flags_of(step, "priv_flags")),
      {}};
}

}  // namespace

std::vector<OpSpec> doorbell_ops() {
  return {
      {.name = "doorbell_create",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle, kOptional},
                {"flags", kDoorbellFlags, kOptional},
                {"priv_flags", kPrivFlags, kOptional}},
       .summary = "creates a doorbell (resource \"any\" without handle); status, binds the handle",
       .call = doorbell_create,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "doorbell_create"}},
      {.name = "doorbell_destroy",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle}},
       .summary = "destroys a doorbell; status",
       .call = doorbell_destroy,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "doorbell_destroy"}},
      {.name = "doorbell_notify",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle}, {"priv_flags", kPrivFlags, kOptional}},
       .summary = "rings the doorbell handle names; status",
       .call = doorbell_notify,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "doorbell_notify"}},
  };
}

}  // namespace vmci::scenario
