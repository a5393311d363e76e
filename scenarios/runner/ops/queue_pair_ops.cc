// The queue pair ops: the kernel API's calls, and the streaming ops that
// move whole data in chunks (stream.h).
#include <algorithm>

#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"
#include "runner/stream.h"
#include "vmci/proto/handles.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;
using enum KeyNeed;

// The queue pair a step names: the actor's own, still allocated.
QueuePair& own_qpair(OpContext& run, const Step& step, Actor& a) {
  const std::string name = step.args["qpair"];
  qpair_variable(run, name, a.spec().name);
  std::unique_ptr<QueuePair>* slot = a.qpair_slot(name);
  if (slot == nullptr || !*slot) fail_step(name + " is detached");
  return **slot;
}

ApiResult qpair_alloc(OpContext& run, const Step& step, Actor& a) {
  const nlohmann::json& args = step.args;
  vmci_handle h = args.contains("handle") ? run.handle(args["handle"]) : VMCI_INVALID_HANDLE;
  const vmci_id peer = args.contains("peer") ? run.context(args["peer"]) : VMCI_INVALID_ID;
  std::unique_ptr<QueuePair> qp;
  const int status =
      a.driver()->qpair_alloc(&qp, &h, size_of(args["produce_size"]), size_of(args["consume_size"]),
                              peer, flags_of(step, "flags"), flags_of(step, "priv_flags"));
  if (status >= VMCI_SUCCESS && !step.as.empty()) a.set_qpair(step.as, std::move(qp));
  return {status, Value{false, h, 0, Owned::kQueuePair, a.spec().name}};
}

ApiResult qpair_detach(OpContext& run, const Step& step, Actor& a) {
  own_qpair(run, step, a);  // the checks
  return {a.driver()->qpair_detach(a.qpair_slot(step.args["qpair"].get<std::string>())), {}};
}

ApiResult qpair_enqueue(OpContext& run, const Step& step, Actor& a) {
  QueuePair& qp = own_qpair(run, step, a);
  std::vector<uint8_t> bytes = data_of(run, step.args["data"]).materialize();
  const size_t size = bytes.size();
  bytes.reserve(1);  // a 0-byte call still passes a buffer, as a C caller would
  return {qp.enqueue(bytes.data(), size), {}};
}

// A dequeue or a peek, its data checked against `expect_data` when the
// step has it, then captured (`capture`).
ApiResult read(OpContext& run, const Step& step, Actor& a, bool dequeue) {
  QueuePair& qp = own_qpair(run, step, a);
  const uint64_t size = size_of(step.args["size"]);
  std::vector<uint8_t> buf(std::max<uint64_t>(size, 1));
  const int64_t n = dequeue ? qp.dequeue(buf.data(), size) : qp.peek(buf.data(), size);
  if (step.args.contains("expect_data") && n >= 0) {
    const Data expected = data_of(run, step.args["expect_data"]);
    if (auto m = compare(expected, std::span(buf.data(), static_cast<size_t>(n)))) {
      fail_step("data differs: " + m->message, expected.describe(), std::to_string(n) + " bytes");
    }
  }
  if (n >= 0) capture(run, step, std::span(buf.data(), static_cast<size_t>(n)));
  return {n, {}};
}

ApiResult qpair_dequeue(OpContext& run, const Step& step, Actor& a) {
  return read(run, step, a, true);
}

ApiResult qpair_peek(OpContext& run, const Step& step, Actor& a) {
  return read(run, step, a, false);
}

ApiResult qpair_produce_free_space(OpContext& run, const Step& step, Actor& a) {
  return {own_qpair(run, step, a).produce_free_space(), {}};
}

ApiResult qpair_produce_buf_ready(OpContext& run, const Step& step, Actor& a) {
  return {own_qpair(run, step, a).produce_buf_ready(), {}};
}

ApiResult qpair_consume_free_space(OpContext& run, const Step& step, Actor& a) {
  return {own_qpair(run, step, a).consume_free_space(), {}};
}

ApiResult qpair_consume_buf_ready(OpContext& run, const Step& step, Actor& a) {
  return {own_qpair(run, step, a).consume_buf_ready(), {}};
}

// The produce or consume queue's indexes, checked against `expect_indexes`
// when the step has it.
ApiResult indexes(OpContext& run, const Step& step, Actor& a, bool produce) {
  QueuePair& qp = own_qpair(run, step, a);
  uint64_t tail = 0, head = 0;
  const int status =
      produce ? qp.get_produce_indexes(&tail, &head) : qp.get_consume_indexes(&tail, &head);
  if (status >= VMCI_SUCCESS && step.args.contains("expect_indexes")) {
    const nlohmann::json& want = step.args["expect_indexes"];
    const std::string actual = "tail " + std::to_string(tail) + ", head " + std::to_string(head);
    if ((want.contains("tail") && want["tail"].get<uint64_t>() != tail) ||
        (want.contains("head") && want["head"].get<uint64_t>() != head)) {
      fail_step("indexes differ", want.dump(), actual);
    }
  }
  return {status, {}};
}

ApiResult qpair_get_produce_indexes(OpContext& run, const Step& step, Actor& a) {
  return indexes(run, step, a, true);
}

ApiResult qpair_get_consume_indexes(OpContext& run, const Step& step, Actor& a) {
  return indexes(run, step, a, false);
}

// What both streaming ops share: the chunk, the waits, the doorbells.
StreamLimits stream_limits(OpContext& run, const Step& step, Actor& a) {
  const nlohmann::json& args = step.args;
  StreamLimits limits;
  if (args.contains("chunk")) limits.chunk = size_of(args["chunk"]);
  limits.no_progress = run.scaled(step.timeout_ms.value_or(kApiTimeoutMs));
  limits.deadline = run.deadline();
  limits.cancelled = run.cancelled();
  if (args.contains("notify")) {
    const vmci_handle doorbell = run.handle(args["notify"]);
    limits.after_enqueue = [&a, doorbell] {
      return a.driver() ? a.driver()->doorbell_notify(doorbell, 0) : VMCI_ERROR_UNAVAILABLE;
    };
  }
  if (args.contains("wait_doorbell")) {
    const vmci_handle doorbell = run.handle(args["wait_doorbell"]);
    limits.wait_for_data = [&a, doorbell](Clock::time_point until) {
      return a.inbox()
          .take(
              [&](const InboxItem& i) {
                return i.kind == InboxItem::Kind::kDoorbell && proto::same_handle(doorbell, i.dst);
              },
              until)
          .has_value();
    };
  }
  return limits;
}

// A stream's verdict. Its result is the bytes moved when it moved them
// all, or the VMCI status that cut it; `expect` (any non-negative result
// when absent) is checked against that. A stream that ended any other way
// (a byte that differs, no progress, the scenario's time) fails whatever
// `expect` says.
void stream_verdict(const Step& step, const StreamResult& r, const std::string& what,
                    StepOutcome& out) {
  const int64_t result = r.ok ? static_cast<int64_t>(r.bytes) : r.cut_by;
  out.expected = step.args.contains("expect") ? step.expect.describe() : what;
  out.actual = r.ok || r.cut_by == 0 ? std::to_string(r.bytes) + " bytes"
                                     : describe_result(ResultDomain::kVmciStatus, r.cut_by) +
                                           " after " + std::to_string(r.bytes) + " bytes";
  if (!r.ok && r.cut_by == 0) fail_step(r.message, out.expected, out.actual);
  if (!step.expect.matches(result)) {
    fail_step(r.ok ? "the stream was not cut" : r.message, out.expected, out.actual);
  }
}

void qpair_write_all(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  QueuePair& qp = own_qpair(run, step, a);
  const StreamLimits limits = stream_limits(run, step, a);
  const Data data = data_of(run, step.args["data"]);
  const StreamResult r = write_all(qp, data, limits);
  stream_verdict(step, r, data.describe() + " enqueued", out);
}

void qpair_read_all(OpContext& run, const Step& step, Actor& a, StepOutcome& out) {
  QueuePair& qp = own_qpair(run, step, a);
  const StreamLimits limits = stream_limits(run, step, a);
  const uint64_t length = size_of(step.args["length"]);
  const Data expected = data_of(run, step.args["expect_data"]);
  const StreamResult r = read_all(qp, length, expected, limits);
  stream_verdict(step, r, std::to_string(length) + " bytes of " + expected.describe(), out);
}

}  // namespace

Value qpair_variable(OpContext& run, const std::string& name, const std::string& actor) {
  return owned_variable(run, name, Owned::kQueuePair, actor);
}

std::vector<OpSpec> queue_pair_ops() {
  return {
      {.name = "qpair_alloc",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"handle", kHandle, kOptional},
                {"produce_size", kSize},
                {"consume_size", kSize},
                {"peer", kContext, kOptional},
                {"flags", kQueuePairFlags, kOptional},
                {"priv_flags", kPrivFlags, kOptional}},
       .summary = "allocates or attaches a queue pair (sizes from the actor's own view); status, "
                  "binds the pair ($x.handle its handle)",
       .call = qpair_alloc,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "qpair_alloc"}},
      {.name = "qpair_detach",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}},
       .summary = "detaches the actor from its queue pair; status",
       .call = qpair_detach,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kCall, "qpair_detach"}},
      {.name = "qpair_enqueue",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}, {"data", kData}},
       .summary = "enqueues data into the produce queue; bytes enqueued or status",
       .call = qpair_enqueue,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_enqueue"}},
      {.name = "qpair_dequeue",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair},
                {"size", kSize},
                {"expect_data", kData, kOptional},
                {"capture", kCapture, kOptional}},
       .summary = "dequeues up to size bytes, checks and captures them; bytes dequeued or status",
       .call = qpair_dequeue,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_dequeue"}},
      {.name = "qpair_peek",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair},
                {"size", kSize},
                {"expect_data", kData, kOptional},
                {"capture", kCapture, kOptional}},
       .summary = "peeks at up to size bytes, checks and captures them; bytes peeked or status",
       .call = qpair_peek,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_peek"}},
      {.name = "qpair_produce_free_space",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}},
       .summary = "free bytes in the produce queue, or status",
       .call = qpair_produce_free_space,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_produce_free_space"}},
      {.name = "qpair_produce_buf_ready",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}},
       .summary = "bytes ready in the produce queue, or status",
       .call = qpair_produce_buf_ready,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_produce_buf_ready"}},
      {.name = "qpair_consume_free_space",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}},
       .summary = "free bytes in the consume queue, or status",
       .call = qpair_consume_free_space,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_consume_free_space"}},
      {.name = "qpair_consume_buf_ready",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}},
       .summary = "bytes ready in the consume queue, or status",
       .call = qpair_consume_buf_ready,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_consume_buf_ready"}},
      {.name = "qpair_get_produce_indexes",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}, {"expect_indexes", kIndexes, kOptional}},
       .summary = "the produce queue's tail and head, checked against expect_indexes; status",
       .call = qpair_get_produce_indexes,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_get_produce_indexes"}},
      {.name = "qpair_get_consume_indexes",
       .kind = OpKind::kApi,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair}, {"expect_indexes", kIndexes, kOptional}},
       .summary = "the consume queue's tail and head, checked against expect_indexes; status",
       .call = qpair_get_consume_indexes,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {RecordedFrom::kDataCall, "qpair_get_consume_indexes"}},
      {.name = "qpair_write_all",
       .kind = OpKind::kStream,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair},
                {"data", kData},
                {"chunk", kChunk, kOptional},
                {"notify", kHandle, kOptional}},
       .summary = "enqueues all of data, chunk bytes at a time (4096), waiting for room and "
                  "ringing notify after each enqueue; bytes, or the status that cut it",
       .play = qpair_write_all,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {}},
      {.name = "qpair_read_all",
       .kind = OpKind::kStream,
       .actor = ActorRule::kRequired,
       .keys = {{"qpair", kQueuePair},
                {"length", kSize},
                {"expect_data", kData},
                {"chunk", kChunk, kOptional},
                {"wait_doorbell", kHandle, kOptional}},
       .summary = "dequeues exactly length bytes, chunk at a time (4096), and checks them; waits "
                  "on wait_doorbell instead of polling; bytes, or the status that cut it",
       .play = qpair_read_all,
       .in_process = InProcess::kChildPlaysIt,
       .recorded = {}},
  };
}

}  // namespace vmci::scenario
