// op_context.h: what an op's function (op_table.h: ApiCall, ActorPlay) may
// use of the run that plays it: the scenario's variables, its values, its
// clock; and how it fails a step. The executor's Run (executor.cc)
// implements it, also in a process actor's child, which plays the steps
// it is sent with a Run of its own.
//
//   ApiResult datagram_destroy_handle(OpContext& run, const Step& step, Actor& a) {
//     return {a.driver()->datagram_destroy_handle(run.handle(step.args["handle"])), {}};
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>

#include "runner/actor.h"
#include "runner/data.h"
#include "runner/executor.h"
#include "runner/model.h"

namespace vmci::scenario {

// How long a call may take before it counts as hung, and how long a wait
// op waits, unless the step says (`timeout_ms`).
constexpr int64_t kApiTimeoutMs = 10000;
constexpr int64_t kWaitTimeoutMs = 2000;

// A failed step: what was expected, what came, and why. Thrown by
// fail_step(), caught by the executor, which reports the step as failed.
struct StepError {
  std::string expected;
  std::string actual;
  std::string message;
};

[[noreturn]] inline void fail_step(std::string message, std::string expected = {},
                                   std::string actual = {}) {
  throw StepError{std::move(expected), std::move(actual), std::move(message)};
}

// What an actor holds by a variable's name: only that actor uses it.
enum class Owned {
  kNothing,        // a plain value
  kQueuePair,      // handle: the pair's
  kVsockListener,  // number: its port
  kVsockStream,    // number: its local port
  kVsockDatagram,  // number: its port
};

// A bound variable: a handle, a number (context id, subscription id,
// result), or something an actor holds (a queue pair, a vSockets socket).
struct Value {
  bool is_handle = false;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  int64_t number = 0;
  Owned owned = Owned::kNothing;
  std::string owner = {};  // the actor that holds it, when owned
};

// What an API call returned, and what its `as` binds if the step succeeds.
struct ApiResult {
  int64_t result = VMCI_ERROR_GENERIC;
  std::optional<Value> bound;
};

class OpContext {
 public:
  virtual ~OpContext() = default;
  // The value of variable `name` ("$x"); fails the step if it is not bound.
  virtual Value variable(const std::string& name) = 0;
  // A context value (an actor's name, a number, a context word, a
  // variable) as an id; fails the step for a variable that is no context.
  virtual vmci_id context(const nlohmann::json& v) = 0;
  // A handle value ({"context", "resource"}, "$h" or "$qp.handle"); fails
  // the step for a variable that is no handle.
  virtual vmci_handle handle(const nlohmann::json& v) = 0;
  // When a step that waits `default_ms` unless it says otherwise
  // (`timeout_ms`) must end, scaled; never after the scenario's deadline.
  virtual Clock::time_point step_deadline(const Step& step, int64_t default_ms) const = 0;
  // When the whole scenario must end.
  virtual Clock::time_point deadline() const = 0;
  // `ms` of waiting, times the time scale (RunOptions::time_scale).
  virtual std::chrono::milliseconds scaled(int64_t ms) const = 0;
  // Set once another parallel branch failed: a long op stops.
  virtual const std::atomic<bool>* cancelled() const = 0;
  // Binds variable `name` (the loader checked that no other step binds it).
  virtual void bind(const std::string& name, Value value) = 0;
};

// The value of variable `name`, which must be something `actor` holds, of
// one of `kinds`: what an actor holds is used only by that actor. Fails
// the step otherwise. (ops/op_context.cc)
Value owned_variable(OpContext& run, const std::string& name, std::span<const Owned> kinds,
                     const std::string& actor);
inline Value owned_variable(OpContext& run, const std::string& name, Owned kind,
                            const std::string& actor) {
  return owned_variable(run, name, std::span<const Owned>(&kind, 1), actor);
}
// "queue pair", "vsock listener", ... (ops/op_context.cc)
std::string owned_name(Owned kind);
// owned_variable() for a queue pair. (ops/queue_pair_ops.cc)
Value qpair_variable(OpContext& run, const std::string& name, const std::string& actor);

// Values the loader checked, decoded (ops/op_context.cc). flags_of: the
// flags of key `key` of the step, of the kind its op declares (op_table.h),
// or 0 if the step has no such key.
uint32_t flags_of(const Step& step, const char* key);
// data_of: a data value; `fields` are built here, their variables
// resolved by `run` (a field's variable that holds no number, or no
// handle for a "handle" field, fails the step).
Data data_of(OpContext& run, const nlohmann::json& v);
// Binds the step's `capture` variables (if it has that key) from `bytes`,
// what the step received; fails the step if a field lies beyond them.
void capture(OpContext& run, const Step& step, std::span<const uint8_t> bytes);
uint64_t size_of(const nlohmann::json& v);

}  // namespace vmci::scenario
