#include "executor.h"

#include <cstdlib>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "actor.h"
#include "data.h"
#include "loader.h"
#include "stream.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kApiTimeoutMs = 10000;
constexpr int64_t kWaitTimeoutMs = 2000;

// A failed step: what was expected, what came, and why.
struct StepError {
  std::string expected;
  std::string actual;
  std::string message;
};

[[noreturn]] void fail(std::string message, std::string expected = {}, std::string actual = {}) {
  throw StepError{std::move(expected), std::move(actual), std::move(message)};
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A private directory for the hostpeer socket, removed afterwards.
class SocketDir {
 public:
  SocketDir() {
    char tmpl[] = "/tmp/vmci-scenario-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) {
      path_ = tmpl;
    } else {
      error_ = std::string("mkdtemp ") + tmpl + ": " + std::strerror(errno);
    }
  }
  ~SocketDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  bool ok() const { return !path_.empty(); }
  const std::string& error() const { return error_; }
  std::string socket() const { return path_ + "/hostpeer.sock"; }

 private:
  std::string path_;
  std::string error_;
};

// A bound variable: a handle, a number (context id, subscription id,
// result), or a queue pair (its handle, and the actor whose it is).
struct Value {
  bool is_handle = false;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  int64_t number = 0;
  std::string qpair_actor;  // set for a queue pair
};

// What an API call returned, and what its `as` binds if the step succeeds.
struct ApiResult {
  int64_t result = VMCI_ERROR_GENERIC;
  std::optional<Value> bound;
};

// The API ops this runner plays; the others of the format load but fail
// their step as not implemented yet.
bool api_op_implemented(const std::string& op) {
  return op == "get_context_id" || op.starts_with("datagram_") || op.starts_with("event_") ||
         op.starts_with("qpair_") || op.starts_with("doorbell_");
}

class Run {
 public:
  Run(const Scenario& s, const Progress& progress, const RunOptions& options)
      : s_(s), progress_(progress), options_(options), scale_(effective_time_scale(options)) {}
  ScenarioOutcome play();
  // In a process actor's child: one request of the runner (process_actor.h).
  json serve(const json& request);

 private:
  bool start_hostpeer(std::string* error);
  bool connect_actor(Actor& actor, Clock::time_point deadline, std::string* error);
  bool run_steps(const std::vector<Step>& steps, const std::string& prefix);
  void started(const StepOutcome& outcome);
  void record(StepOutcome outcome);
  void execute(const Step& step, StepOutcome& out);
  ApiResult call_api(const Step& step, Actor& actor);
  ApiResult call_qpair_api(const Step& step, Actor& actor);
  void stream_op(const Step& step, Actor& actor, StepOutcome& out);
  // The queue pair a step names: the actor's own, still allocated.
  QueuePair& qpair(const Step& step, Actor& actor);
  void wait_op(const Step& step, Actor& actor, StepOutcome& out);
  void control_op(const Step& step);
  // The crash matrix (RunOptions::kill): kills the actor, checks what the
  // survivors saw, ends them, and checks that nothing of them is left.
  void kill_and_check(const std::string& victim);
  // Plays the cut before steps[i]: a step of its own, then the rest not run.
  bool crash_matrix_cut(const std::vector<Step>& steps, size_t i);
  // What hostpeer holds now, through the stats request; fails the step if
  // it does not answer.
  proto::StatsBody holdings();
  // A step of a process actor, played by its child.
  void remote(const Step& step, Actor& actor, StepOutcome& out);
  // `v` (the value of `key`) with variables and actor names replaced by
  // what they mean here, for a child that knows neither.
  json resolved(const json& v, const std::string& key);

  Actor& actor(const Step& step) { return *actors_.at(step.actor); }
  Clock::time_point step_deadline(const Step& step, int64_t default_ms) const;
  vmci_id context(const json& v);
  vmci_handle handle(const json& v);
  Value variable(const std::string& name);
  void bind(const std::string& name, Value value);

  const Scenario& s_;
  const Progress& progress_;
  const RunOptions& options_;
  const double scale_;  // RunOptions::time_scale
  // `ms` of waiting, times the time scale.
  milliseconds scaled(int64_t ms) const {
    return milliseconds(static_cast<int64_t>(static_cast<double>(ms) * scale_));
  }
  std::optional<SocketDir> dir_;  // made when the runner starts its own hostpeer
  // Where the actors connect: the runner's own hostpeer, or --connect's.
  std::string socket_path() const {
    return options_.connect_socket.empty() ? dir_->socket() : options_.connect_socket;
  }
  std::unique_ptr<host::HostPeer> hostpeer_;
  std::map<std::string, std::unique_ptr<Actor>> actors_;
  // The crash matrix: the runner's own host connection (for the stats
  // request), what hostpeer held and /dev/shm had before the scenario, and
  // the queue-pair variables detached since.
  std::unique_ptr<vmci::guest::Driver> watcher_;
  proto::StatsBody held_before_{};
  std::set<std::string> shm_before_;
  std::mutex detached_mutex_;
  std::set<std::string> detached_;
  std::mutex vars_mutex_;
  std::map<std::string, Value> vars_;
  Clock::time_point deadline_;
  std::atomic<bool> cancelled_{false};
  std::mutex outcome_mutex_;
  ScenarioOutcome outcome_;
};

Clock::time_point Run::step_deadline(const Step& step, int64_t default_ms) const {
  const auto own = Clock::now() + scaled(step.timeout_ms.value_or(default_ms));
  return std::min(own, deadline_);
}

Value Run::variable(const std::string& name) {
  std::lock_guard lock(vars_mutex_);
  auto it = vars_.find(name);
  if (it == vars_.end()) fail("variable " + name + " is not bound");
  return it->second;
}

void Run::bind(const std::string& name, Value value) {
  std::lock_guard lock(vars_mutex_);
  vars_[name] = value;
}

vmci_id Run::context(const json& v) {
  if (v.is_number()) return v.get<vmci_id>();
  const std::string name = v;
  if (name.starts_with("$")) {
    const Value value = variable(name);
    if (value.is_handle) fail(name + " is a handle, not a context");
    return static_cast<vmci_id>(value.number);
  }
  if (name == "hypervisor") return VMCI_HYPERVISOR_CONTEXT_ID;
  if (name == "well_known") return VMCI_WELL_KNOWN_CONTEXT_ID;
  if (name == "host") return VMCI_HOST_CONTEXT_ID;
  if (name == "invalid") return VMCI_INVALID_ID;
  return actors_.at(name)->context_id();
}

vmci_handle Run::handle(const json& v) {
  if (v.is_string()) {
    const std::string name = v;
    if (name.ends_with(".handle")) {
      const std::string qp = name.substr(0, name.size() - std::string(".handle").size());
      const Value value = variable(qp);
      if (value.qpair_actor.empty()) fail(qp + " is not a queue pair");
      return value.handle;
    }
    const Value value = variable(name);
    if (!value.qpair_actor.empty()) fail(name + " is a queue pair; its handle is " + name + ".handle");
    if (!value.is_handle) fail(name + " is not a handle");
    return value.handle;
  }
  return VMCI_MAKE_HANDLE(context(v["context"]), v["resource"].get<vmci_id>());
}

uint32_t flags_of(const Step& step, const char* key, const std::string& kind) {
  uint32_t flags = 0;
  std::string error;
  if (step.args.contains(key)) parse_flags(step.args[key], kind, &flags, &error);
  return flags;
}

Data data_of(const json& v) {
  Data data;
  std::string error;
  parse_data(v, &data, &error);
  return data;
}

bool handle_matches(const vmci_handle& expected, const vmci_handle& actual) {
  return expected.resource == actual.resource &&
         (expected.context == actual.context || expected.context == VMCI_INVALID_ID);
}

void settle(Actor& a);

std::string inbox_listing(Actor& actor) {
  const auto items = actor.inbox().contents();
  if (items.empty()) return "the inbox is empty";
  std::string text = "the inbox holds:";
  for (const auto& item : items) text += " [" + item.describe() + "]";
  return text;
}

ApiResult Run::call_api(const Step& step, Actor& a) {
  vmci::guest::Driver* driver = a.driver();
  if (driver == nullptr) return {VMCI_ERROR_UNAVAILABLE, {}};  // disconnected
  const json& args = step.args;
  const std::string& op = step.op;
  if (op == "get_context_id") {
    const vmci_id cid = driver->get_context_id();
    return {cid, Value{false, VMCI_INVALID_HANDLE, cid, {}}};
  }
  if (op == "datagram_create_handle") {
    const vmci_id resource = !args.contains("resource") || args["resource"] == "any"
                                 ? VMCI_INVALID_ID
                                 : args["resource"].get<vmci_id>();
    vmci_handle h = VMCI_INVALID_HANDLE;
    const int status = driver->datagram_create_handle(resource, flags_of(step, "flags", "datagram"),
                                                      flags_of(step, "priv_flags", "priv_flags"),
                                                      a.datagram_callback(), &h);
    return {status, Value{true, h, 0, {}}};
  }
  if (op == "datagram_destroy_handle") {
    return {driver->datagram_destroy_handle(handle(args["handle"])), {}};
  }
  if (op == "datagram_send") {
    const std::vector<uint8_t> payload = data_of(args["payload"]).materialize();
    std::vector<uint8_t> buf(sizeof(vmci_datagram) + payload.size());
    vmci_datagram header{handle(args["dst"]), handle(args["src"]), payload.size()};
    std::memcpy(buf.data(), &header, sizeof header);
    std::copy(payload.begin(), payload.end(), buf.begin() + sizeof header);
    return {driver->datagram_send(reinterpret_cast<const vmci_datagram*>(buf.data())), {}};
  }
  if (op == "event_subscribe") {
    vmci_id id = 0;
    const int status = driver->event_subscribe(
        *proto::event_from_name(args["event"].get<std::string>()), a.event_callback(), &id);
    return {status, Value{false, VMCI_INVALID_HANDLE, id, {}}};
  }
  if (op == "event_unsubscribe") {
    const json& sub = args["subscription"];
    vmci_id id = 0;
    if (sub.is_string()) {
      const Value value = variable(sub);
      if (value.is_handle) fail(sub.get<std::string>() + " is a handle, not a subscription id");
      id = static_cast<vmci_id>(value.number);
    } else {
      id = sub.get<vmci_id>();
    }
    return {driver->event_unsubscribe(id), {}};
  }
  if (op.starts_with("qpair_")) return call_qpair_api(step, a);
  if (op == "doorbell_create") {
    vmci_handle h = VMCI_INVALID_HANDLE;
    if (args.contains("handle")) h = handle(args["handle"]);
    auto slot = std::make_shared<Actor::DoorbellSlot>();
    const int status =
        driver->doorbell_create(&h, flags_of(step, "flags", "doorbell"),
                                flags_of(step, "priv_flags", "priv_flags"), a.doorbell_callback(slot));
    slot->promise.set_value(h);
    return {status, Value{true, h, 0, {}}};
  }
  if (op == "doorbell_destroy") return {driver->doorbell_destroy(handle(args["handle"])), {}};
  if (op == "doorbell_notify") {
    return {driver->doorbell_notify(handle(args["handle"]), flags_of(step, "priv_flags", "priv_flags")),
            {}};
  }
  fail("op " + op + " is not implemented by this runner yet");
}

QueuePair& Run::qpair(const Step& step, Actor& a) {
  const std::string name = step.args["qpair"];
  const Value value = variable(name);
  if (value.qpair_actor.empty()) fail(name + " is not a queue pair");
  if (value.qpair_actor != a.spec().name) {
    fail(name + " is " + value.qpair_actor + "'s queue pair, not " + a.spec().name + "'s");
  }
  std::unique_ptr<QueuePair>* slot = a.qpair_slot(name);
  if (slot == nullptr || !*slot) fail(name + " is detached");
  return **slot;
}

// The data of a dequeue or peek against `expect_data`, when the step has it.
void check_read(const Step& step, int64_t n, const std::vector<uint8_t>& buf) {
  if (!step.args.contains("expect_data") || n < 0) return;
  const Data expected = data_of(step.args["expect_data"]);
  if (auto m = compare(expected, std::span(buf.data(), static_cast<size_t>(n)))) {
    fail("data differs: " + m->message, expected.describe(), std::to_string(n) + " bytes");
  }
}

ApiResult Run::call_qpair_api(const Step& step, Actor& a) {
  const json& args = step.args;
  const std::string& op = step.op;
  if (op == "qpair_alloc") {
    uint64_t produce = 0, consume = 0;
    std::string error;
    parse_size(args["produce_size"], &produce, &error);
    parse_size(args["consume_size"], &consume, &error);
    vmci_handle h = args.contains("handle") ? handle(args["handle"]) : VMCI_INVALID_HANDLE;
    const vmci_id peer = args.contains("peer") ? context(args["peer"]) : VMCI_INVALID_ID;
    std::unique_ptr<QueuePair> qp;
    const int status =
        a.driver()->qpair_alloc(&qp, &h, produce, consume, peer, flags_of(step, "flags", "qpair"),
                                flags_of(step, "priv_flags", "priv_flags"));
    if (status >= VMCI_SUCCESS && !step.as.empty()) a.set_qpair(step.as, std::move(qp));
    return {status, Value{false, h, 0, a.spec().name}};
  }
  if (op == "qpair_detach") {
    const std::string name = args["qpair"];
    qpair(step, a);  // the checks
    return {a.driver()->qpair_detach(a.qpair_slot(name)), {}};
  }
  QueuePair& qp = qpair(step, a);
  if (op == "qpair_enqueue") {
    std::vector<uint8_t> bytes = data_of(args["data"]).materialize();
    const size_t size = bytes.size();
    bytes.reserve(1);  // a 0-byte call still passes a buffer, as a C caller would
    return {qp.enqueue(bytes.data(), size), {}};
  }
  if (op == "qpair_dequeue" || op == "qpair_peek") {
    uint64_t size = 0;
    std::string error;
    parse_size(args["size"], &size, &error);
    std::vector<uint8_t> buf(std::max<uint64_t>(size, 1));
    const int64_t n = op == "qpair_dequeue" ? qp.dequeue(buf.data(), size)
                                            : qp.peek(buf.data(), size);
    check_read(step, n, buf);
    return {n, {}};
  }
  if (op == "qpair_produce_free_space") return {qp.produce_free_space(), {}};
  if (op == "qpair_produce_buf_ready") return {qp.produce_buf_ready(), {}};
  if (op == "qpair_consume_free_space") return {qp.consume_free_space(), {}};
  if (op == "qpair_consume_buf_ready") return {qp.consume_buf_ready(), {}};
  if (op == "qpair_get_produce_indexes" || op == "qpair_get_consume_indexes") {
    uint64_t tail = 0, head = 0;
    const int status = op == "qpair_get_produce_indexes" ? qp.get_produce_indexes(&tail, &head)
                                                         : qp.get_consume_indexes(&tail, &head);
    if (status >= VMCI_SUCCESS && args.contains("expect_indexes")) {
      const json& want = args["expect_indexes"];
      const std::string actual =
          "tail " + std::to_string(tail) + ", head " + std::to_string(head);
      if ((want.contains("tail") && want["tail"].get<uint64_t>() != tail) ||
          (want.contains("head") && want["head"].get<uint64_t>() != head)) {
        fail("indexes differ", want.dump(), actual);
      }
    }
    return {status, {}};
  }
  fail("op " + op + " is not implemented by this runner yet");
}

void Run::stream_op(const Step& step, Actor& a, StepOutcome& out) {
  const json& args = step.args;
  QueuePair& qp = qpair(step, a);
  StreamLimits limits;
  std::string error;
  if (args.contains("chunk")) parse_size(args["chunk"], &limits.chunk, &error);
  limits.no_progress = scaled(step.timeout_ms.value_or(kApiTimeoutMs));
  limits.deadline = deadline_;
  limits.cancelled = &cancelled_;
  if (args.contains("notify")) {
    const vmci_handle doorbell = handle(args["notify"]);
    limits.after_enqueue = [&a, doorbell] {
      return a.driver() ? a.driver()->doorbell_notify(doorbell, 0) : VMCI_ERROR_UNAVAILABLE;
    };
  }
  if (args.contains("wait_doorbell")) {
    const vmci_handle doorbell = handle(args["wait_doorbell"]);
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
  StreamResult r;
  if (step.op == "qpair_write_all") {
    const Data data = data_of(args["data"]);
    out.expected = data.describe() + " enqueued";
    r = write_all(qp, data, limits);
  } else {
    uint64_t length = 0;
    parse_size(args["length"], &length, &error);
    const Data expected = data_of(args["expect_data"]);
    out.expected = std::to_string(length) + " bytes of " + expected.describe();
    r = read_all(qp, length, expected, limits);
  }
  out.actual = std::to_string(r.bytes) + " bytes";
  if (!r.ok) fail(r.message, out.expected, out.actual);
}

void Run::wait_op(const Step& step, Actor& a, StepOutcome& out) {
  const json& args = step.args;
  const std::string& op = step.op;
  if (op == "hold_callbacks" || op == "release_callbacks") {
    if (a.driver() == nullptr) fail(step.actor + " is not connected");
    op == "hold_callbacks" ? a.driver()->hold_callbacks() : a.driver()->release_callbacks();
    return;
  }
  if (op == "expect_nothing") {
    const int64_t within = args.value("within_ms", int64_t{200});
    const auto deadline = std::min(Clock::now() + scaled(within), deadline_);
    if (auto item = a.inbox().peek_any(deadline)) {
      fail("something arrived", "nothing", item->describe());
    }
    out.actual = "nothing";
    return;
  }
  const auto deadline = step_deadline(step, kWaitTimeoutMs);
  if (op == "expect_datagram") {
    const vmci_handle to = handle(args["handle"]);
    std::optional<vmci_handle> from;
    if (args.contains("src")) from = handle(args["src"]);
    std::optional<Data> payload;
    if (args.contains("payload")) payload = data_of(args["payload"]);
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
      fail(why, expected, "nothing matching");
    }
    out.actual = item->describe();
    settle(a);
    return;
  }
  if (op == "expect_doorbell") {
    const vmci_handle doorbell = handle(args["handle"]);
    auto rung = [&](const InboxItem& i) {
      return i.kind == InboxItem::Kind::kDoorbell && proto::same_handle(doorbell, i.dst);
    };
    auto item = a.inbox().take(rung, deadline);
    if (!item) {
      fail("the doorbell was not rung in time; " + inbox_listing(a),
           "doorbell " + proto::to_string(doorbell) + " rung", "nothing");
    }
    int taken = 1;  // and every other queued notification of it
    while (a.inbox().take(rung, Clock::now())) ++taken;
    out.actual = item->describe() + (taken > 1 ? " (" + std::to_string(taken) + " times)" : "");
    settle(a);
    return;
  }
  if (op == "expect_event") {
    const uint32_t event = *proto::event_from_name(args["event"].get<std::string>());
    const json data = args.value("data", json::object());
    std::optional<vmci_id> cid, peer;
    std::optional<vmci_handle> qp;
    if (data.contains("context_id")) cid = context(data["context_id"]);
    if (data.contains("peer_id")) peer = context(data["peer_id"]);
    if (data.contains("handle")) qp = handle(data["handle"]);
    std::string expected = "event " + args["event"].get<std::string>();
    if (cid) expected += " for context " + std::to_string(*cid);
    auto item = a.inbox().take(
        [&](const InboxItem& i) {
          return i.kind == InboxItem::Kind::kEvent && i.event == event &&
                 (!cid || i.context_id == *cid) && (!peer || i.peer_id == *peer) &&
                 (!qp || proto::same_handle(*qp, i.qp));
        },
        deadline);
    if (!item) fail("no matching event arrived in time; " + inbox_listing(a), expected, "nothing");
    out.actual = item->describe();
    settle(a);
    return;
  }
  fail("op " + op + " is not implemented by this runner yet");
}

// Once an item is taken, hostpeer has seen its acknowledgement (sent as its
// callback started): what the next steps observe does not depend on timing.
void settle(Actor& a) {
  if (a.driver() != nullptr) a.driver()->sync();
}

bool Run::connect_actor(Actor& a, Clock::time_point deadline, std::string* error) {
  for (;;) {
    const int status = a.connect(socket_path(), error);
    if (status >= VMCI_SUCCESS) return true;
    // A guest asking for its old id waits until the old context is gone.
    if (status != VMCI_ERROR_ALREADY_EXISTS || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

void Run::control_op(const Step& step) {
  const std::string& op = step.op;
  if (op == "sleep") {
    const auto until =
        std::min(Clock::now() + scaled(step.args["ms"].get<int64_t>()), deadline_);
    std::this_thread::sleep_until(until);
    return;
  }
  if (op == "kill") return actor(step).kill();
  if (op == "disconnect") return actor(step).disconnect();
  if (op == "reconnect") {
    std::string error;
    if (!connect_actor(actor(step), step_deadline(step, kApiTimeoutMs), &error)) {
      fail("reconnect failed: " + error);
    }
    return;
  }
  if (op == "restart_hostpeer") {
    hostpeer_.reset();
    std::string error;
    if (!start_hostpeer(&error)) fail("hostpeer did not start again: " + error);
    return;
  }
  fail("op " + op + " is not implemented by this runner yet");
}

bool is_actor_op(const std::string& op) {
  return op == "get_context_id" || op.starts_with("datagram_") || op.starts_with("event_") ||
         op.starts_with("qpair_") || op.starts_with("doorbell_") || op.starts_with("expect_") ||
         op.ends_with("_callbacks");
}

void Run::execute(const Step& step, StepOutcome& out) {
  if (!step.actor.empty() && actor(step).spec().process && is_actor_op(step.op)) {
    return remote(step, actor(step), out);
  }
  if (step.op == "qpair_write_all" || step.op == "qpair_read_all") {
    return stream_op(step, actor(step), out);
  }
  if (step.op == "get_context_id" || step.op.starts_with("datagram_") ||
      step.op.starts_with("event_") || step.op.starts_with("qpair_") ||
      step.op.starts_with("doorbell_")) {
    if (!api_op_implemented(step.op)) {
      fail("op " + step.op + " is not implemented by this runner yet");
    }
    Actor& a = actor(step);
    // The call runs on its own thread so that a hung call fails the step.
    auto call = std::async(std::launch::async, [&] { return call_api(step, a); });
    if (call.wait_until(step_deadline(step, kApiTimeoutMs)) != std::future_status::ready) {
      a.kill();  // unblocks the call
      call.wait();
      fail("the call did not return in time (hung)");
    }
    const ApiResult r = call.get();
    out.actual = proto::describe_result(r.result);
    out.expected = step.expect.describe();
    if (!step.expect.matches(r.result)) fail("unexpected result", out.expected, out.actual);
    // `as` binds only what a successful call made.
    if (!step.as.empty() && r.result >= VMCI_SUCCESS && r.bound) bind(step.as, *r.bound);
    return;
  }
  if (step.op == "repeat") {
    for (int64_t r = 0; r < step.count; ++r) {
      if (!run_steps(step.steps, out.index + "[" + std::to_string(r + 1) + "]")) {
        fail("repetition " + std::to_string(r + 1) + " failed");
      }
    }
    return;
  }
  if (step.op == "parallel") {
    std::vector<std::future<bool>> branches;
    for (size_t b = 0; b < step.branches.size(); ++b) {
      branches.push_back(std::async(std::launch::async, [&, b] {
        const bool ok = run_steps(step.branches[b], out.index + "/" + std::to_string(b + 1));
        if (!ok) cancelled_ = true;
        return ok;
      }));
    }
    bool ok = true;
    for (auto& b : branches) ok = b.get() && ok;
    if (!ok) fail("a branch failed");
    return;
  }
  if (step.op.starts_with("expect_") || step.op.ends_with("_callbacks")) {
    return wait_op(step, actor(step), out);
  }
  control_op(step);
}

json to_json(const Value& v) {
  return json{{"is_handle", v.is_handle},
              {"context", v.handle.context},
              {"resource", v.handle.resource},
              {"number", v.number},
              {"qpair_actor", v.qpair_actor}};
}

Value value_from_json(const json& j) {
  return Value{j.at("is_handle").get<bool>(),
               VMCI_MAKE_HANDLE(j.at("context").get<vmci_id>(), j.at("resource").get<vmci_id>()),
               j.at("number").get<int64_t>(), j.at("qpair_actor").get<std::string>()};
}

json step_to_json(const Step& step, json args) {
  json j{{"op", step.op},
         {"actor", step.actor},
         {"note", step.note},
         {"path", step.path},
         {"args", std::move(args)},
         {"expect",
          {{"kind", static_cast<int>(step.expect.kind)},
           {"value", step.expect.value},
           {"min", step.expect.min},
           {"max", step.expect.max}}},
         {"as", step.as}};
  if (step.timeout_ms) j["timeout_ms"] = *step.timeout_ms;
  return j;
}

Step step_from_json(const json& j) {
  Step step;
  step.op = j.at("op").get<std::string>();
  step.actor = j.at("actor").get<std::string>();
  step.note = j.at("note").get<std::string>();
  step.path = j.at("path").get<std::string>();
  step.args = j.at("args");
  const json& e = j.at("expect");
  step.expect.kind = static_cast<Expectation::Kind>(e.at("kind").get<int>());
  step.expect.value = e.at("value").get<int64_t>();
  step.expect.min = e.at("min").get<int64_t>();
  step.expect.max = e.at("max").get<int64_t>();
  step.as = j.at("as").get<std::string>();
  if (j.contains("timeout_ms")) step.timeout_ms = j["timeout_ms"].get<int64_t>();
  return step;
}

json Run::resolved(const json& v, const std::string& key) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, item] : v.items()) out[k] = resolved(item, k);
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& item : v) out.push_back(resolved(item, key));
    return out;
  }
  // Not values: the op, the actor, the note, the expectation and the name `as` binds.
  if (!v.is_string() || key == "as" || key == "op" || key == "actor" || key == "note" ||
      key == "expect") {
    return v;
  }
  const std::string text = v;
  if (text.starts_with("$")) {
    if (text.ends_with(".handle")) {
      const vmci_handle h = handle(v);
      return json{{"context", h.context}, {"resource", h.resource}};
    }
    const Value value = variable(text);
    if (!value.qpair_actor.empty()) return v;  // the child's own name for its pair
    if (value.is_handle) return json{{"context", value.handle.context}, {"resource", value.handle.resource}};
    return value.number;
  }
  const bool names_a_context = key == "peer" || key == "context" || key == "context_id";
  if (names_a_context && actors_.count(text)) return actors_.at(text)->context_id();
  return v;
}

void Run::remote(const Step& step, Actor& a, StepOutcome& out) {
  const bool api = !step.op.starts_with("expect_") && !step.op.ends_with("_callbacks") &&
                   step.op != "qpair_write_all" && step.op != "qpair_read_all";
  if (step.args.contains("qpair")) {  // a pair is used only by the actor that bound it
    const std::string name = step.args["qpair"];
    const Value value = variable(name);
    if (value.qpair_actor.empty()) fail(name + " is not a queue pair");
    if (value.qpair_actor != a.spec().name) {
      fail(name + " is " + value.qpair_actor + "'s queue pair, not " + a.spec().name + "'s");
    }
  }
  json answer;
  if (a.process() == nullptr) {
    answer = json{{"lost", "the actor's process is not running"}};
  } else {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline_ - Clock::now()).count();
    answer = a.process()->request(
        {{"op", "step"}, {"step", step_to_json(step, resolved(step.args, ""))}, {"deadline_ms", left}});
  }
  if (answer.contains("lost")) {
    // As for a thread actor whose connection is cut: the calls fail.
    if (!api) fail(step.actor + "'s process is gone (" + answer["lost"].get<std::string>() + ")");
    out.expected = step.expect.describe();
    out.actual = proto::describe_result(VMCI_ERROR_UNAVAILABLE);
    if (!step.expect.matches(VMCI_ERROR_UNAVAILABLE)) fail("unexpected result", out.expected, out.actual);
    return;
  }
  out.expected = answer.value("expected", "");
  out.actual = answer.value("actual", "");
  if (answer.value("status", "") != "passed") {
    fail(answer.value("message", "failed in the actor's process"), out.expected, out.actual);
  }
  if (!step.as.empty() && answer.contains("bound")) bind(step.as, value_from_json(answer["bound"]));
}

json Run::serve(const json& request) {
  const std::string op = request.value("op", "");
  const ActorSpec& spec = s_.actors.at(0);
  if (op == "connect") {
    auto a = std::make_unique<Actor>(spec);
    std::string error;
    const auto until = Clock::now() + scaled(2000);
    int status;
    // A guest asking for its old id waits until the old context is gone.
    while ((status = a->connect(request.at("socket").get<std::string>(), &error)) ==
               VMCI_ERROR_ALREADY_EXISTS &&
           Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    const vmci_id cid = a->context_id();
    actors_[spec.name] = std::move(a);
    return json{{"status", status}, {"context_id", cid}, {"error", error}};
  }
  if (op == "disconnect") {
    if (auto it = actors_.find(spec.name); it != actors_.end()) it->second->disconnect();
    return json{{"status", VMCI_SUCCESS}};
  }
  if (op == "watch" || op == "watched" || op == "live_qpairs") {
    auto it = actors_.find(spec.name);
    if (it == actors_.end()) return json{{"status", VMCI_ERROR_UNAVAILABLE}};
    if (op == "watch") return json{{"status", it->second->watch_peer_events()}};
    if (op == "live_qpairs") return json{{"names", it->second->live_qpairs()}};
    json items = json::array();
    for (const auto& item : it->second->watched()) items.push_back(to_json(item));
    return json{{"items", items}};
  }
  if (op == "leftovers") {
    auto it = actors_.find(spec.name);
    return json{{"items", it == actors_.end() ? std::vector<std::string>{} : it->second->leftovers()}};
  }
  if (op != "step") return json{{"status", "failed"}, {"message", "unknown request " + op}};
  const Step step = step_from_json(request.at("step"));
  deadline_ = Clock::now() + milliseconds(request.at("deadline_ms").get<int64_t>());
  StepOutcome out;
  json answer;
  try {
    execute(step, out);
    answer["status"] = "passed";
  } catch (const StepError& e) {
    answer["status"] = "failed";
    answer["message"] = e.message;
    if (!e.expected.empty()) out.expected = e.expected;
    if (!e.actual.empty()) out.actual = e.actual;
  } catch (const std::exception& e) {
    answer["status"] = "failed";
    answer["message"] = std::string("the actor's process: ") + e.what();
  }
  answer["expected"] = out.expected;
  answer["actual"] = out.actual;
  if (!step.as.empty()) {
    std::lock_guard lock(vars_mutex_);
    if (auto it = vars_.find(step.as); it != vars_.end()) answer["bound"] = to_json(it->second);
  }
  return answer;
}


std::set<std::string> shm_entries() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

proto::StatsBody Run::holdings() {
  proto::StatsBody stats{};
  const int status = watcher_ ? watcher_->hostpeer_stats(&stats) : VMCI_ERROR_UNAVAILABLE;
  if (status < VMCI_SUCCESS) fail("hostpeer does not answer the stats request: " + proto::describe_result(status));
  return stats;
}

// What the crash matrix compares: what hostpeer holds, not what it counted.
std::string holdings_differ(const proto::StatsBody& before, const proto::StatsBody& now) {
  std::string out;
  auto check = [&](const char* name, uint64_t a, uint64_t b) {
    if (a != b) out += std::string(out.empty() ? "" : ", ") + name + " " + std::to_string(a) + " -> " + std::to_string(b);
  };
  check("guest_contexts", before.guest_contexts, now.guest_contexts);
  check("host_connections", before.host_connections, now.host_connections);
  check("host_datagram_handles", before.host_datagram_handles, now.host_datagram_handles);
  check("queue_pairs", before.queue_pairs, now.queue_pairs);
  check("queue_pair_bytes", before.queue_pair_bytes, now.queue_pair_bytes);
  check("doorbells", before.doorbells, now.doorbells);
  check("ring_channels", before.ring_channels, now.ring_channels);
  check("ring_grants", before.ring_grants, now.ring_grants);
  check("pending_datagrams", before.pending_datagrams, now.pending_datagrams);
  check("pending_datagram_bytes", before.pending_datagram_bytes, now.pending_datagram_bytes);
  return out;
}

bool Run::crash_matrix_cut(const std::vector<Step>& steps, size_t i) {
  StepOutcome out;
  out.index = std::to_string(i + 1);
  out.actor = options_.kill->actor;
  out.op = "kill (crash matrix)";
  out.note = "SIGKILL before step " + std::to_string(i + 1) + " (" + steps[i].op + ")";
  const auto start = Clock::now();
  started(out);
  bool ok = true;
  try {
    kill_and_check(options_.kill->actor);
    out.status = StepOutcome::Status::kPassed;
  } catch (const StepError& e) {
    out.status = StepOutcome::Status::kFailed;
    out.message = e.message;
    out.expected = e.expected;
    out.actual = e.actual;
    ok = false;
  }
  out.ms = ms_since(start);
  record(out);
  for (size_t j = i; j < steps.size(); ++j) {
    StepOutcome skipped;
    skipped.index = std::to_string(j + 1);
    skipped.path = steps[j].path;
    skipped.actor = steps[j].actor;
    skipped.op = steps[j].op;
    skipped.status = StepOutcome::Status::kNotRun;
    std::lock_guard lock(outcome_mutex_);
    outcome_.steps.push_back(skipped);
  }
  return ok;
}

void Run::kill_and_check(const std::string& victim) {
  Actor& dead = *actors_.at(victim);
  const vmci_id cid = dead.context_id();
  const bool running = dead.connected();
  // What each survivor must hear: one QP_PEER_DETACH per pair it shares
  // with the victim, and (hosts, when a guest dies) one CTX_REMOVED.
  std::set<uint64_t> victims_pairs;
  if (running) {
    for (const auto& name : dead.live_qpairs()) victims_pairs.insert(proto::handle_key(variable(name).handle));
  }
  struct Expected {
    std::set<uint64_t> detaches;
    bool removed = false;
  };
  std::map<std::string, Expected> expected;
  for (auto& [name, a] : actors_) {
    if (name == victim || !a->connected()) continue;
    if (!running) continue;
    if (const int status = a->watch_peer_events(); status < VMCI_SUCCESS) {
      fail(name + " could not subscribe to the crash matrix's events: " + proto::describe_result(status));
    }
    Expected& e = expected[name];
    for (const auto& qp : a->live_qpairs()) {
      const uint64_t key = proto::handle_key(variable(qp).handle);
      if (victims_pairs.count(key)) e.detaches.insert(key);
    }
    e.removed = a->spec().host && !dead.spec().host;
  }
  dead.kill();

  // Every expected event within 5 s; then none more within 200 ms.
  std::vector<std::string> problems;
  auto tally = [&](bool final) {
    bool all = true;
    for (auto& [name, e] : expected) {
      std::map<uint64_t, int> detached;
      int removed = 0;
      for (const auto& item : actors_.at(name)->watched()) {
        if (item.event == VMCI_EVENT_QP_PEER_DETACH && item.peer_id == cid) ++detached[proto::handle_key(item.qp)];
        if (item.event == VMCI_EVENT_CTX_REMOVED && item.context_id == cid) ++removed;
      }
      for (uint64_t key : e.detaches) {
        if (detached[key] < 1) all = false;
        if (final && detached[key] != 1) {
          problems.push_back(name + " got " + std::to_string(detached[key]) + " QP_PEER_DETACH for " +
                             proto::to_string(proto::handle_from_key(key)) + ", not 1");
        }
      }
      for (const auto& [key, n] : detached) {
        if (final && !e.detaches.count(key) && n > 0) {
          problems.push_back(name + " got QP_PEER_DETACH for " + proto::to_string(proto::handle_from_key(key)) +
                             ", which it did not share with " + victim);
        }
      }
      const int want_removed = e.removed ? 1 : 0;
      if (removed < want_removed) all = false;
      if (final && removed != want_removed) {
        problems.push_back(name + " got " + std::to_string(removed) + " CTX_REMOVED for context " +
                           std::to_string(cid) + ", not " + std::to_string(want_removed));
      }
    }
    return all;
  };
  const auto until = Clock::now() + scaled(5000);
  while (!tally(false) && Clock::now() < until) std::this_thread::sleep_for(milliseconds(10));
  std::this_thread::sleep_for(scaled(200));
  tally(true);

  // The others end cleanly; then hostpeer must hold what it held before.
  for (auto& [name, a] : actors_) {
    if (name != victim) a->disconnect();
  }
  std::string differ;
  const auto settle_until = Clock::now() + scaled(5000);
  do {
    differ = holdings_differ(held_before_, holdings());
    if (differ.empty()) break;
    std::this_thread::sleep_for(milliseconds(10));
  } while (Clock::now() < settle_until);
  if (!differ.empty()) problems.push_back("hostpeer still holds what the scenario made: " + differ);
  std::vector<std::string> left;
  for (const auto& name : shm_entries()) {
    if (!shm_before_.count(name)) left.push_back(name);
  }
  if (!left.empty()) problems.push_back("/dev/shm gained " + std::to_string(left.size()) + " entries, e.g. " + left[0]);
  if (!problems.empty()) {
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
    fail(text);
  }
}

void Run::started(const StepOutcome& outcome) {
  std::lock_guard lock(outcome_mutex_);
  if (progress_.step_started) progress_.step_started(outcome);
}

void Run::record(StepOutcome outcome) {
  std::lock_guard lock(outcome_mutex_);
  if (progress_.step_finished) progress_.step_finished(outcome);
  outcome_.steps.push_back(std::move(outcome));
}

bool Run::run_steps(const std::vector<Step>& steps, const std::string& prefix) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    if (prefix.empty() && options_.kill && options_.kill->step == i) {
      return crash_matrix_cut(steps, i);
    }
    StepOutcome out;
    out.index = prefix.empty() ? std::to_string(i + 1) : prefix + "." + std::to_string(i + 1);
    out.path = step.path;
    out.actor = step.actor;
    out.op = step.op;
    out.note = step.note;
    const auto start = Clock::now();
    bool ok = true;
    if (cancelled_) {
      out.status = StepOutcome::Status::kNotRun;
      out.message = "cancelled: another branch failed";
      ok = false;
    } else if (Clock::now() >= deadline_) {
      out.status = StepOutcome::Status::kFailed;
      out.message = "the scenario's timeout (" + std::to_string(s_.timeout_ms) +
                    " ms) passed before this step";
      ok = false;
    } else {
      started(out);
      try {
        execute(step, out);
        out.status = StepOutcome::Status::kPassed;
        if (Clock::now() >= deadline_) {
          // The step ended, but past the whole scenario's limit.
          out.status = StepOutcome::Status::kFailed;
          out.message = "the scenario's timeout of " + std::to_string(s_.timeout_ms) +
                        " ms passed during this step";
          ok = false;
        }
      } catch (const StepError& e) {
        out.status = StepOutcome::Status::kFailed;
        if (!e.expected.empty()) out.expected = e.expected;
        if (!e.actual.empty()) out.actual = e.actual;
        out.message = e.message;
        if (Clock::now() >= deadline_) {
          out.message += " (the scenario's timeout of " + std::to_string(s_.timeout_ms) +
                         " ms passed during this step)";
        }
        ok = false;
      }
    }
    out.ms = ms_since(start);
    record(out);
    if (!ok) {
      for (size_t j = i + 1; j < steps.size(); ++j) {
        StepOutcome skipped;
        skipped.index =
            prefix.empty() ? std::to_string(j + 1) : prefix + "." + std::to_string(j + 1);
        skipped.path = steps[j].path;
        skipped.actor = steps[j].actor;
        skipped.op = steps[j].op;
        skipped.status = StepOutcome::Status::kNotRun;
        std::lock_guard lock(outcome_mutex_);
        outcome_.steps.push_back(skipped);
      }
      return false;
    }
  }
  return true;
}

bool Run::start_hostpeer(std::string* error) {
  host::Options options;
  options.socket_path = dir_->socket();
  options.trace_path = options_.hostpeer_trace;
  for (const auto& [name, value] : s_.limits) {
    if (name == "max_qp_memory_per_context") options.limits.max_qp_memory_per_context = value;
    if (name == "max_queue_pairs_per_context")
      options.limits.max_queue_pairs_per_context = static_cast<uint32_t>(value);
    if (name == "max_doorbells_per_context")
      options.limits.max_doorbells_per_context = static_cast<uint32_t>(value);
    if (name == "max_host_datagram_handles")
      options.limits.max_host_datagram_handles = static_cast<uint32_t>(value);
    if (name == "max_pending_datagram_bytes") options.limits.max_pending_datagram_bytes = value;
  }
  hostpeer_ = host::HostPeer::start(options, error);
  return hostpeer_ != nullptr;
}

ScenarioOutcome Run::play() {
  const auto start = Clock::now();
  deadline_ = start + scaled(s_.timeout_ms);
  outcome_.name = s_.name;
  outcome_.file = s_.file;
  auto finish = [&](ScenarioOutcome::Status status, std::string reason) {
    outcome_.status = status;
    outcome_.reason = std::move(reason);
    outcome_.ms = ms_since(start);
    return outcome_;
  };
  std::string error;
  if (!options_.connect_socket.empty()) {
    if (s_.sets_hostpeer || s_.restarts_hostpeer) {
      return finish(ScenarioOutcome::Status::kSkipped,
                    std::string("it ") +
                        (s_.sets_hostpeer ? "sets up its own hostpeer" : "restarts hostpeer") +
                        ", which a hostpeer reached with --connect cannot do");
    }
  } else if (!dir_.emplace().ok()) {
    return finish(ScenarioOutcome::Status::kError,
                  "no private directory for the socket: " + dir_->error());
  } else if (!start_hostpeer(&error)) {
    return finish(ScenarioOutcome::Status::kError, "hostpeer did not start: " + error);
  }
  if (options_.kill) {
    int status;
    watcher_ = vmci::guest::Driver::connect(
        {.socket_path = socket_path(), .role = proto::Role::kHost}, &status, &error);
    if (!watcher_) return finish(ScenarioOutcome::Status::kError, "the crash matrix's host connection: " + error);
    try {
      held_before_ = holdings();
    } catch (const StepError& e) {
      return finish(ScenarioOutcome::Status::kError, e.message);
    }
    shm_before_ = shm_entries();
  }
  // Actors that ask for a context id connect first.
  for (bool asking : {true, false}) {
    for (const auto& spec : s_.actors) {
      if (spec.context_id.has_value() != asking) continue;
      auto a = std::make_unique<Actor>(spec, options_.actor_program);
      // (An id asked for may still be held by a context of the scenario
      // before, going away in a hostpeer reached with --connect.)
      if (!connect_actor(*a, std::min(deadline_, Clock::now() + scaled(2000)), &error)) {
        return finish(ScenarioOutcome::Status::kFailed,
                      "actor '" + spec.name + "' could not connect: " + error);
      }
      actors_[spec.name] = std::move(a);
    }
  }
  const bool passed = run_steps(s_.steps, "");
  for (auto& [name, a] : actors_) {
    for (const auto& item : a->leftovers()) outcome_.leftovers.push_back(name + ": " + item);
  }
  actors_.clear();
  hostpeer_.reset();
  if (!passed) {
    for (const auto& step : outcome_.steps) {
      if (step.status == StepOutcome::Status::kFailed) {
        return finish(ScenarioOutcome::Status::kFailed,
                      "step " + step.index + " (" + (step.actor.empty() ? "" : step.actor + " ") +
                          step.op + ") failed" + (step.message.empty() ? "" : ": " + step.message));
      }
    }
  }
  return finish(ScenarioOutcome::Status::kPassed, {});
}

}  // namespace

int Executor::serve_actor(const nlohmann::json& spec, int in_fd, int out_fd) {
  Scenario scenario;
  scenario.name = "serve-actor";
  scenario.actors.push_back(actor_spec_from_json(spec));
  RunOptions options;
  options.connect_socket = "(the runner's hostpeer)";  // never starts one of its own
  const Progress quiet;
  Run run(scenario, quiet, options);
  serve_requests(in_fd, out_fd, [&](const json& request) { return run.serve(request); });
  return 0;
}

double effective_time_scale(const RunOptions& options) {
  double scale = options.time_scale;
  if (scale <= 0) {
    const char* env = std::getenv("VMCI_TIME_SCALE");
    scale = env != nullptr ? std::strtod(env, nullptr) : 1;
  }
  return scale >= 1 ? scale : 1;
}

ScenarioOutcome Executor::run(const Scenario& scenario) {
  Run run(scenario, progress_, options_);
  return run.play();
}

}  // namespace vmci::scenario
