// The datagram ops: handles and sends (expect_datagram is with the other
// waits, in control_ops.cc).
#include <algorithm>
#include <cstring>

#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;
using enum KeyNeed;

ApiResult datagram_create_handle(OpContext&, const Step& step, Actor& a) {
  const nlohmann::json& args = step.args;
  const vmci_id resource = !args.contains("resource") || args["resource"] == "any"
                               ? VMCI_INVALID_ID
                               : args["resource"].get<vmci_id>();
  vmci_handle h = VMCI_INVALID_HANDLE;
  const int status = a.driver()->datagram_create_handle(
      resource, flags_of(step, "flags"), flags_of(step, "priv_flags"), a.datagram_callback(), &h);
  return {status, Value{.is_handle = true, .handle = h}};
}

ApiResult datagram_destroy_handle(OpContext& run, const Step& step, Actor& a) {
  return {a.driver()->datagram_destroy_handle(run.handle(step.args["handle"])), {}};
}

ApiResult datagram_send(OpContext& run, const Step& step, Actor& a) {
  const std::vector<uint8_t> payload = data_of(run, step.args["payload"]).materialize();
  std::vector<uint8_t> buf(sizeof(vmci_datagram) + payload.size());
  vmci_datagram header{run.handle(step.args["dst"]), run.handle(step.args["src"]), payload.size()};
  std::memcpy(buf.data(), &header, sizeof header);
  std::copy(payload.begin(), payload.end(), buf.begin() + sizeof header);
  return {a.driver()->datagram_send(reinterpret_cast<const vmci_datagram*>(buf.data())), {}};
}

}  // namespace

std::vector<OpSpec> datagram_ops() {
  return {
      {.name = "datagram_create_handle",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"resource", kResource, kOptional},
                {"flags", kDatagramFlags, kOptional},
                {"priv_flags", kPrivFlags, kOptional}},
       .summary =
           "creates a datagram handle (resource \"any\" by default); status, binds the handle",
       .call = datagram_create_handle,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "datagram_create_handle"}},
      {.name = "datagram_destroy_handle",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle}},
       .summary = "destroys a datagram handle; status",
       .call = datagram_destroy_handle,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "datagram_destroy_handle"}},
      {.name = "datagram_send",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"src", kHandle}, {"dst", kHandle}, {"payload", kData}},
       .summary = "sends payload from src to dst; bytes sent (header + payload) or status",
       .call = datagram_send,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "datagram_send"}},
  };
}

}  // namespace vmci::scenario
