// op_table.h: every scenario op, declared once. A declaration (OpSpec)
// carries the op's name, its keys and what the loader checks them against,
// its actor rule, one line that says what it does, how it is played (by a
// thread actor, by a process actor, or by the executor itself) and how
// `vmci-scenario record` writes it. The declarations live one file per
// family (ops/datagram_ops.cc, event_ops.cc, queue_pair_ops.cc,
// doorbell_ops.cc, control_ops.cc, vsock_ops.cc); op_table() joins them. The loader, the
// executor, the recorder and `vmci-scenario ops` look ops up here and
// nowhere else.
//
//   const OpSpec* spec = find_op("datagram_send");
//   if (spec == nullptr) ...;                        // not an op of the format
//   for (const KeySpec& key : spec->keys) ...;        // its arguments
//   for (const std::string& line : op_list()) puts(line.c_str());  // `vmci-scenario ops`
//
// A new op: declare it in its family's file with its function (op_context.h
// says what the function may use). A new family: its file in
// scenarios/CMakeLists.txt, its function below and in op_table().
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runner/model.h"

namespace vmci::scenario {

class Actor;
class OpContext;
enum class Owned;
struct ApiResult;
struct Step;
struct StepOutcome;

// The keys a step may have besides its own (`op` and `note` always; `actor`
// by ActorRule) follow from its kind.
enum class OpKind {
  kApi,      // one kernel API call: `expect`, `as` and `timeout_ms` (a hung call) allowed
  kWait,     // waits for what arrives, or holds callbacks: `timeout_ms` allowed
  kStream,   // whole data through a queue pair: `timeout_ms` (no progress) and `expect`
             // (bytes moved, or the status that cut it) allowed
  kControl,  // played by the executor itself, not by an actor's connection
};

enum class ActorRule { kRequired, kForbidden };

// What the loader checks a key's value against (loader.cc,
// Checker::argument); value_kind_name() is how `vmci-scenario ops` says it.
enum class ValueKind {
  kHandle,          // {"context", "resource"} or a variable
  kResource,        // a resource id or "any"
  kDatagramFlags,   // datagram handle flags: ["DELAYED_CB"]
  kDoorbellFlags,   // doorbell flags: ["DELAYED_CB"]
  kQueuePairFlags,  // queue pair flags: ["ATTACH_ONLY", "LOCAL"]
  kPrivFlags,       // privilege flags: ["RESTRICTED"] or ["TRUSTED"]
  kData,            // text, hex, base64, zeros or pattern
  kEventMatch,      // expect_event's payload fields: context_id, handle, peer_id
  kEvent,           // an event name, "CTX_REMOVED"
  kSubscription,    // a subscription id or a variable
  kQueuePair,       // a queue pair variable
  kSize,            // bytes: a number or "64KiB"
  kChunk,           // a size of at least one byte
  kContext,         // an actor's name, a number, a context word or a variable
  kIndexes,         // {"tail", "head"}, each optional
  kMilliseconds,    // a non-negative integer
  kCount,           // repeat's count: 0..1000000000
  kSteps,           // an array of steps (played inside repeat)
  kBranches,        // an array of step arrays (played in parallel)
  kBoolean,         // true or false
  kPort,            // a vSockets port: a number, "any", or a socket variable (its port)
  kBacklog,         // a listen backlog: 1..65535
  kShutdownHow,     // "RD", "WR" or "RDWR"
  kVsockAddress,    // {"cid": context, "port": port}
  kVsockListener,   // a listener variable (vsock_listen)
  kVsockStream,     // a stream variable (vsock_connect, vsock_accept)
  kVsockDatagram,   // a datagram socket variable (vsock_dgram_bind)
  kVsockSocket,     // any of the three
  kCapture,         // {"$n": {"offset": 0, "type": "u32"}}: fields of what the step received
};

// What an actor holds that a value of `kind` names (empty: none).
std::vector<Owned> owned_kinds(ValueKind kind);

enum class KeyNeed { kRequired, kOptional };

struct KeySpec {
  std::string_view name;
  ValueKind kind;
  KeyNeed need = KeyNeed::kRequired;
};

// kApi, played by a thread actor: makes the call on `actor`'s connection
// (never null: the executor answers VMCI_ERROR_UNAVAILABLE itself for an
// actor without one) and says what a successful step's `as` binds. The
// executor runs it on a thread of its own, so that a hung call fails the
// step, and checks `expect`. A step it cannot make (an unbound variable)
// fails with fail_step() (op_context.h).
using ApiCall = ApiResult (*)(OpContext& run, const Step& step, Actor& actor);
// kWait and kStream, played by a thread actor: fails the step with
// fail_step(), and may say in `out` what it expected and what came.
using ActorPlay = void (*)(OpContext& run, const Step& step, Actor& actor, StepOutcome& out);

// kControl: what the executor does (executor.cc, Run::control_op).
enum class ControlOp {
  kNone,  // not a control op
  kSleep,
  kRepeat,
  kParallel,
  kKill,
  kDisconnect,
  kReconnect,
  kRestartHostpeer,
};

// How a step of the op is played when its actor is a process actor
// (`"isolation": "process"`).
enum class InProcess {
  // The step goes to the actor's child with its variables and actor names
  // resolved (executor.cc, Run::remote); the child plays it as a thread
  // actor. If the child is gone, an API op results in
  // VMCI_ERROR_UNAVAILABLE and any other op fails.
  kChildPlaysIt,
  // The runner plays it: a control op, which on an actor acts on the Actor
  // object (a process actor's kill is a SIGKILL of the child).
  kRunnerPlaysIt,
};

// Where `vmci-scenario record` (record/recorder.cc) finds the op in traces,
// and which of its functions writes the step.
enum class RecordedFrom {
  kNotRecorded,  // no trace line becomes this op
  kCall,         // a "call" line whose op is `trace_op`: Recorder::emit_call
  kDataCall,     // a queue pair's data "call" line whose op is `trace_op`:
                 // Recorder::emit_data_call, which models the pair's queues
  kCallback,     // a "callback" line whose op is `trace_op`: Recorder::emit_callback
  kClose,        // an endpoint's "close" line whose how is `trace_op` (kill:
                 // also the end of its connection in hostpeer's trace when
                 // its own trace just stops): Recorder::emit
  kFoldedRun,    // three or more equal steps in a row: Recorder::fold_repeats
};

struct Recorded {
  RecordedFrom from = RecordedFrom::kNotRecorded;
  std::string_view trace_op;
};

// One op. Invariant (op_table_test.cc): the player that `kind` names is
// set (`call` for kApi, `play` for kWait and kStream, `control` for
// kControl), and only a control op is played by the runner in a process
// actor's place or forbids an actor.
struct OpSpec {
  std::string_view name;
  OpKind kind;
  ActorRule actor;
  std::vector<KeySpec> keys;             // its own keys, required and optional
  std::string_view summary;              // one line: what it does, what it results in
  ApiCall call = nullptr;                // kApi
  ActorPlay play = nullptr;              // kWait, kStream
  ControlOp control = ControlOp::kNone;  // kControl
  InProcess in_process;
  Recorded recorded;
  // kApi: what its result means, and so what `expect` names.
  ResultDomain results = ResultDomain::kVmciStatus;

  // The declaration of key `key` of this op, or null.
  const KeySpec* key(std::string_view key) const;
};

// Every op, in the order `vmci-scenario ops` lists them. Built once, never
// changed; safe to use from any thread.
const std::vector<OpSpec>& op_table();
// The op named `name`, or null.
const OpSpec* find_op(std::string_view name);
// The op that a trace line recorded as `from` with op (or how) `trace_op`
// becomes, or null.
const OpSpec* find_recorded(RecordedFrom from, std::string_view trace_op);

// "handle", "size", ... as `vmci-scenario ops` prints a key's kind.
std::string_view value_kind_name(ValueKind kind);
// One line per op, in table order: its name, its keys with their kinds
// (optional ones in brackets, `actor` first where it is required; "-" for
// none) and its summary.
//   "datagram_send   actor src:handle dst:handle payload:data — sends ..."
std::vector<std::string> op_list();

// The families; op_table() joins them, in this order.
std::vector<OpSpec> datagram_ops();    // ops/datagram_ops.cc
std::vector<OpSpec> event_ops();       // ops/event_ops.cc
std::vector<OpSpec> queue_pair_ops();  // ops/queue_pair_ops.cc
std::vector<OpSpec> doorbell_ops();    // ops/doorbell_ops.cc
std::vector<OpSpec> control_ops();     // ops/control_ops.cc: the actor's context, waits, control
std::vector<OpSpec> vsock_ops();       // ops/vsock_ops.cc

}  // namespace vmci::scenario
