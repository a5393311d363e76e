#include "executor.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "actor.h"
#include "hostpeer_watch.h"
#include "ops/op_context.h"
#include "ops/op_table.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// What an API op answers for an actor without a connection (killed,
// disconnected, its process gone): VMCI's UNAVAILABLE, or for a vSockets
// op ENOTCONN.
int64_t unconnected_result(ResultDomain domain) {
  return domain == ResultDomain::kErrno ? -ENOTCONN : VMCI_ERROR_UNAVAILABLE;
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

// Plays a scenario; for the ops' functions (op_table.h) the OpContext of
// the steps they play.
class Run : public OpContext {
 public:
  Run(const Scenario& s, const Progress& progress, const RunOptions& options)
      : s_(s), progress_(progress), options_(options), scale_(effective_time_scale(options)) {}
  ScenarioOutcome play();
  // In a process actor's child: one request of the runner (process_actor.h).
  json serve(const json& request);

  // OpContext.
  Value variable(const std::string& name) override;
  vmci_id context(const json& v) override;
  vmci_handle handle(const json& v) override;
  Clock::time_point step_deadline(const Step& step, int64_t default_ms) const override;
  Clock::time_point deadline() const override { return deadline_; }
  milliseconds scaled(int64_t ms) const override {
    return milliseconds(static_cast<int64_t>(static_cast<double>(ms) * scale_));
  }
  const std::atomic<bool>* cancelled() const override { return &cancelled_; }
  // "1500 ms", or "1500 ms (3000 ms at time scale 2)" when stretched.
  std::string timeout_text() const {
    std::string text = std::to_string(s_.timeout_ms) + " ms";
    if (scale_ > 1) {
      char factor[32];
      std::snprintf(factor, sizeof factor, "%g", scale_);
      text += " (" + std::to_string(scaled(s_.timeout_ms).count()) + " ms at time scale " + factor + ")";
    }
    return text;
  }
  void bind(const std::string& name, Value value) override;

 private:
  bool start_hostpeer(std::string* error);
  bool connect_actor(Actor& actor, Clock::time_point deadline, std::string* error);
  bool run_steps(const std::vector<Step>& steps, const std::string& prefix);
  void started(const StepOutcome& outcome);
  void record(StepOutcome outcome);
  // Plays a step as its op's declaration says (op_table.h).
  void execute(const Step& step, StepOutcome& out);
  // An API op on a thread actor: its call on a thread of its own (a hung
  // call fails the step), its result against `expect`, then `as`.
  void api_op(const OpSpec& spec, const Step& step, Actor& actor, StepOutcome& out);
  void control_op(const OpSpec& spec, const Step& step, StepOutcome& out);
  // kill or disconnect: ends the actor's connection, then waits until
  // hostpeer has let it go (a guest's context is gone; a host connection no
  // longer counted), so the next step sees what the end caused.
  void end_connection(const Step& step, bool kill);
  // The crash matrix (RunOptions::kill). take_cut: subscribes the
  // survivors to what they must hear, kills the victim, and stops the
  // other parallel branches. check_cut: checks what the survivors saw,
  // ends them, and checks that nothing of them is left; fails the step.
  void take_cut(const std::string& victim);
  void check_cut();
  // Records a step of the crash matrix's own that runs `body`, then
  // steps[from..] as not run; returns whether the step passed.
  bool crash_matrix_step(const std::vector<Step>& steps, size_t from, const std::string& index,
                         const std::string& op, const std::string& note,
                         const std::function<void()>& body);
  // Plays `step` (a streaming op) and takes the cut while it runs.
  void play_and_cut(const Step& step, StepOutcome& out);
  void not_run(const std::vector<Step>& steps, size_t from, const std::string& prefix,
               const std::string& message);
  // What hostpeer holds now, through the stats request; fails the step if
  // it does not answer.
  proto::StatsBody holdings();
  // A step of a process actor, played by its child.
  void remote(const OpSpec& spec, const Step& step, Actor& actor, StepOutcome& out);
  // `v` (the value of `key`) with variables and actor names replaced by
  // what they mean here, for a child that knows neither.
  json resolved(const json& v, const std::string& key);

  Actor& actor(const Step& step) { return *actors_.at(step.actor); }

  const Scenario& s_;
  const Progress& progress_;
  const RunOptions& options_;
  const double scale_;  // RunOptions::time_scale
  std::optional<SocketDir> dir_;  // made when the runner starts its own hostpeer
  // Where the actors connect: the runner's own hostpeer, or --connect's.
  std::string socket_path() const {
    return options_.connect_socket.empty() ? dir_->socket() : options_.connect_socket;
  }
  std::unique_ptr<host::HostPeer> hostpeer_;
  std::map<std::string, std::unique_ptr<Actor>> actors_;
  // The runner's own host connection: kill and disconnect wait through it
  // until hostpeer has let the actor's connection go; the crash matrix
  // asks it what hostpeer holds.
  std::optional<HostpeerWatch> watch_;
  // The crash matrix: what hostpeer held and /dev/shm had before the
  // scenario, and the queue-pair variables detached since.
  proto::StatsBody held_before_{};
  std::set<std::string> shm_before_;
  std::mutex detached_mutex_;
  std::set<std::string> detached_;
  // Set by take_cut: what each survivor must hear from the victim.
  struct CutExpectation {
    std::set<uint64_t> detaches;  // pairs shared with the victim
    // Pairs the victim made and had already left (a vsock close detaches):
    // that detach's event may still be on its way, so one may come.
    std::set<uint64_t> may_detach;
    bool removed = false;         // CTX_REMOVED (a host, when a guest dies)
  };
  std::string cut_victim_;
  vmci_id cut_cid_ = VMCI_INVALID_ID;
  std::map<std::string, CutExpectation> cut_expected_;
  std::atomic<bool> cut_taken_{false};
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
  if (it == vars_.end()) fail_step("variable " + name + " is not bound");
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
    if (value.is_handle) fail_step(name + " is a handle, not a context");
    if (value.owned != Owned::kNothing) fail_step(name + " is a " + owned_name(value.owned) + ", not a context");
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
      if (value.owned != Owned::kQueuePair) fail_step(qp + " is not a queue pair");
      return value.handle;
    }
    const Value value = variable(name);
    if (value.owned == Owned::kQueuePair) fail_step(name + " is a queue pair; its handle is " + name + ".handle");
    if (value.owned != Owned::kNothing) fail_step(name + " is a " + owned_name(value.owned) + ", not a handle");
    if (!value.is_handle) fail_step(name + " is not a handle");
    return value.handle;
  }
  return VMCI_MAKE_HANDLE(context(v["context"]), v["resource"].get<vmci_id>());
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

void Run::control_op(const OpSpec& spec, const Step& step, StepOutcome& out) {
  switch (spec.control) {
    case ControlOp::kSleep: {
      const auto until = std::min(Clock::now() + scaled(step.args["ms"].get<int64_t>()), deadline_);
      std::this_thread::sleep_until(until);
      return;
    }
    case ControlOp::kRepeat:
      for (int64_t r = 0; r < step.count; ++r) {
        if (!run_steps(step.steps, out.index + "[" + std::to_string(r + 1) + "]")) {
          fail_step("repetition " + std::to_string(r + 1) + " failed");
        }
      }
      return;
    case ControlOp::kParallel: {
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
      if (!ok) fail_step("a branch failed");
      return;
    }
    case ControlOp::kKill:
      return end_connection(step, true);
    case ControlOp::kDisconnect:
      return end_connection(step, false);
    case ControlOp::kReconnect: {
      std::string error;
      if (!connect_actor(actor(step), step_deadline(step, kApiTimeoutMs), &error)) {
        fail_step("reconnect failed: " + error);
      }
      return;
    }
    case ControlOp::kRestartHostpeer: {
      hostpeer_.reset();
      std::string error;
      if (!start_hostpeer(&error)) fail_step("hostpeer did not start again: " + error);
      return;
    }
    case ControlOp::kNone:
      break;
  }
  fail_step("op " + step.op + " is not implemented by this runner yet");
}

void Run::api_op(const OpSpec& spec, const Step& step, Actor& a, StepOutcome& out) {
  // The call runs on its own thread so that a hung call fails the step.
  auto call = std::async(std::launch::async, [&]() -> ApiResult {
    if (a.driver() == nullptr) return {unconnected_result(spec.results), {}};  // disconnected
    // A vSockets call of a killed actor, as of one whose process is gone.
    if (spec.results == ResultDomain::kErrno && !a.connected()) {
      return {unconnected_result(spec.results), {}};
    }
    return spec.call(*this, step, a);
  });
  if (call.wait_until(step_deadline(step, kApiTimeoutMs)) != std::future_status::ready) {
    a.kill();  // unblocks the call
    call.wait();
    fail_step("the call did not return in time (hung)");
  }
  const ApiResult r = call.get();
  out.actual = describe_result(spec.results, r.result);
  out.expected = step.expect.describe();
  if (!step.expect.matches(r.result)) fail_step("unexpected result", out.expected, out.actual);
  // `as` binds only what a successful call made.
  if (!step.as.empty() && r.result >= VMCI_SUCCESS && r.bound) bind(step.as, *r.bound);
}

void Run::execute(const Step& step, StepOutcome& out) {
  const OpSpec* spec = find_op(step.op);
  if (spec == nullptr) fail_step("op " + step.op + " is not in the op table");  // never loaded
  if (spec->in_process == InProcess::kChildPlaysIt && actor(step).spec().process) {
    return remote(*spec, step, actor(step), out);
  }
  switch (spec->kind) {
    case OpKind::kApi:
      if (spec->call == nullptr) break;
      return api_op(*spec, step, actor(step), out);
    case OpKind::kWait:
    case OpKind::kStream:
      if (spec->play == nullptr) break;
      return spec->play(*this, step, actor(step), out);
    case OpKind::kControl:
      return control_op(*spec, step, out);
  }
  fail_step("op " + step.op + " is not implemented by this runner yet");
}

json to_json(const Value& v) {
  return json{{"is_handle", v.is_handle},
              {"context", v.handle.context},
              {"resource", v.handle.resource},
              {"number", v.number},
              {"owned", static_cast<int>(v.owned)},
              {"owner", v.owner}};
}

Value value_from_json(const json& j) {
  return Value{j.at("is_handle").get<bool>(),
               VMCI_MAKE_HANDLE(j.at("context").get<vmci_id>(), j.at("resource").get<vmci_id>()),
               j.at("number").get<int64_t>(), static_cast<Owned>(j.at("owned").get<int>()),
               j.at("owner").get<std::string>()};
}

json step_to_json(const Step& step, json args) {
  json j{{"op", step.op},
         {"actor", step.actor},
         {"note", step.note},
         {"path", step.path},
         {"args", std::move(args)},
         {"expect",
          {{"kind", static_cast<int>(step.expect.kind)},
           {"domain", static_cast<int>(step.expect.domain)},
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
  step.expect.domain = static_cast<ResultDomain>(e.at("domain").get<int>());
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
    // A port names the socket's port; otherwise the child's own name for
    // what it holds.
    if (value.owned != Owned::kNothing && value.owned != Owned::kQueuePair &&
        (key == "port" || key == "local_port")) {
      return value.number;
    }
    if (value.owned != Owned::kNothing) return v;
    if (value.is_handle) return json{{"context", value.handle.context}, {"resource", value.handle.resource}};
    return value.number;
  }
  const bool names_a_context =
      key == "peer" || key == "context" || key == "context_id" || key == "peer_id" || key == "cid";
  if (names_a_context && actors_.count(text)) return actors_.at(text)->context_id();
  return v;
}

void Run::remote(const OpSpec& spec, const Step& step, Actor& a, StepOutcome& out) {
  const bool api = spec.kind == OpKind::kApi;
  // What an actor holds is used only by that actor.
  for (const KeySpec& key : spec.keys) {
    const std::vector<Owned> kinds = owned_kinds(key.kind);
    if (!kinds.empty() && step.args.contains(key.name)) {
      owned_variable(*this, step.args[std::string(key.name)].get<std::string>(), kinds, a.spec().name);
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
    if (!api) fail_step(step.actor + "'s process is gone (" + answer["lost"].get<std::string>() + ")");
    const int64_t result = unconnected_result(spec.results);
    out.expected = step.expect.describe();
    out.actual = describe_result(spec.results, result);
    if (!step.expect.matches(result)) fail_step("unexpected result", out.expected, out.actual);
    return;
  }
  out.expected = answer.value("expected", "");
  out.actual = answer.value("actual", "");
  if (answer.value("status", "") != "passed") {
    fail_step(answer.value("message", "failed in the actor's process"), out.expected, out.actual);
  }
  if (!step.as.empty() && answer.contains("bound")) bind(step.as, value_from_json(answer["bound"]));
  const json captured = answer.value("captured", json::object());
  for (const auto& [name, value] : captured.items()) {
    bind(name, value_from_json(value));
  }
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
  if (op == "watch" || op == "watched" || op == "live_queue_pairs") {
    auto it = actors_.find(spec.name);
    if (it == actors_.end()) return json{{"status", VMCI_ERROR_UNAVAILABLE}};
    if (op == "watch") return json{{"status", it->second->watch_peer_events()}};
    if (op == "live_queue_pairs") {
      json handles = json::array();
      for (const vmci_handle h : it->second->live_queue_pairs()) {
        handles.push_back({h.context, h.resource});
      }
      return json{{"handles", handles}};
    }
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
  std::lock_guard lock(vars_mutex_);
  if (!step.as.empty()) {
    if (auto it = vars_.find(step.as); it != vars_.end()) answer["bound"] = to_json(it->second);
  }
  // What the step captured from the bytes it received.
  const json captures = step.args.value("capture", json::object());
  for (const auto& [name, _] : captures.items()) {
    if (auto it = vars_.find(name); it != vars_.end())
      answer["captured"][name] = to_json(it->second);
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
  std::string error;
  const auto stats = watch_->held(&error);
  if (!stats) fail_step(error);
  return *stats;
}

void Run::end_connection(const Step& step, bool kill) {
  Actor& a = actor(step);
  const bool was_connected = a.connected();
  const vmci_id cid = a.context_id();
  std::string error;
  std::optional<std::set<uint64_t>> hosts;
  if (was_connected && a.spec().host && !(hosts = watch_->host_connections(&error))) {
    fail_step(error);
  }
  if (kill) {
    a.kill();
  } else {
    a.disconnect();
  }
  if (!was_connected) return;
  const auto deadline = step_deadline(step, kApiTimeoutMs);
  const bool let_go = hosts ? watch_->wait_until_one_gone(*hosts, deadline, &error)
                            : watch_->wait_until_context_gone(cid, deadline, &error);
  if (!let_go) fail_step("hostpeer did not let the connection go in time: " + error);
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

void Run::not_run(const std::vector<Step>& steps, size_t from, const std::string& prefix,
                  const std::string& message) {
  for (size_t j = from; j < steps.size(); ++j) {
    StepOutcome skipped;
    skipped.index = prefix.empty() ? std::to_string(j + 1) : prefix + "." + std::to_string(j + 1);
    skipped.path = steps[j].path;
    skipped.actor = steps[j].actor;
    skipped.op = steps[j].op;
    skipped.message = message;
    skipped.status = StepOutcome::Status::kNotRun;
    std::lock_guard lock(outcome_mutex_);
    outcome_.steps.push_back(skipped);
  }
}

bool Run::crash_matrix_step(const std::vector<Step>& steps, size_t from, const std::string& index,
                            const std::string& op, const std::string& note,
                            const std::function<void()>& body) {
  StepOutcome out;
  out.index = index;
  out.actor = options_.kill->actor;
  out.op = op;
  out.note = note;
  const auto start = Clock::now();
  started(out);
  bool ok = true;
  try {
    body();
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
  not_run(steps, from, "", "");
  return ok;
}

void Run::play_and_cut(const Step& step, StepOutcome& out) {
  auto running = std::async(std::launch::async, [&]() -> std::string {
    try {
      execute(step, out);
      return {};
    } catch (const StepError& e) {
      return e.message;
    }
  });
  // Time for the stream to be under way (a process actor's step has to
  // reach its child), short enough to come before the end of most; a step
  // that ends sooner is cut after it, and the report says so.
  const bool ended = running.wait_for(scaled(1)) == std::future_status::ready;
  take_cut(options_.kill->actor);
  const std::string message = running.get();
  out.status = StepOutcome::Status::kNotRun;
  out.message = std::string("the crash matrix killed ") + options_.kill->actor +
                (ended ? " after it ended" : " while it ran") +
                (message.empty() ? "" : "; it ended: " + message);
}

void Run::take_cut(const std::string& victim) {
  Actor& dead = *actors_.at(victim);
  cut_victim_ = victim;
  cut_cid_ = dead.context_id();
  cut_expected_.clear();
  const bool running = dead.connected();
  // What each survivor must hear: one QP_PEER_DETACH per pair it shares
  // with the victim, and (hosts, when a guest dies) one CTX_REMOVED.
  std::set<uint64_t> victims_pairs;
  if (running) {
    for (const vmci_handle h : dead.live_queue_pairs()) victims_pairs.insert(proto::handle_key(h));
  }
  for (auto& [name, a] : actors_) {
    if (name == victim || !a->connected()) continue;
    if (!running) continue;
    if (const int status = a->watch_peer_events(); status < VMCI_SUCCESS) {
      fail_step(name + " could not subscribe to the crash matrix's events: " + proto::describe_result(status));
    }
    CutExpectation& e = cut_expected_[name];
    for (const vmci_handle h : a->live_queue_pairs()) {
      const uint64_t key = proto::handle_key(h);
      if (victims_pairs.count(key)) {
        e.detaches.insert(key);
      } else if (h.context == cut_cid_) {
        e.may_detach.insert(key);
      }
    }
    e.removed = a->spec().host && !dead.spec().host;
  }
  dead.kill();
  cut_taken_ = true;
  cancelled_ = true;  // other branches start no further step
}

void Run::check_cut() {
  const std::string& victim = cut_victim_;
  const vmci_id cid = cut_cid_;
  // Every expected event within 5 s; then none more within 200 ms.
  std::vector<std::string> problems;
  auto tally = [&](bool final) {
    bool all = true;
    for (auto& [name, e] : cut_expected_) {
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
        const int allowed = e.may_detach.count(key) ? 1 : 0;
        if (final && !e.detaches.count(key) && n > allowed) {
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
    fail_step(text);
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
    StepOutcome out;
    out.index = prefix.empty() ? std::to_string(i + 1) : prefix + "." + std::to_string(i + 1);
    out.path = step.path;
    out.actor = step.actor;
    out.op = step.op;
    out.note = step.note;
    const bool cut_here = options_.kill && options_.kill->index == out.index && !cut_taken_;
    if (cut_here && !options_.kill->during) {
      const std::string note = "SIGKILL before step " + out.index + " (" + step.op + ")";
      if (prefix.empty()) {
        return crash_matrix_step(steps, i, out.index, "kill (crash matrix)", note, [&] {
          take_cut(options_.kill->actor);
          check_cut();
        });
      }
      // In a branch: the kill now; the check once the parallel has ended.
      take_cut(options_.kill->actor);
      not_run(steps, i, prefix, "cut: " + note);
      return false;
    }
    const auto start = Clock::now();
    bool ok = true;
    if (cancelled_) {
      out.status = StepOutcome::Status::kNotRun;
      out.message = cut_taken_ ? "cut by the crash matrix" : "cancelled: another branch failed";
      ok = false;
    } else if (Clock::now() >= deadline_) {
      out.status = StepOutcome::Status::kFailed;
      out.message = "the scenario's timeout (" + timeout_text() +
                    ") passed before this step";
      ok = false;
    } else if (cut_here) {
      started(out);
      play_and_cut(step, out);
      ok = false;
    } else {
      started(out);
      try {
        execute(step, out);
        out.status = StepOutcome::Status::kPassed;
        if (Clock::now() >= deadline_) {
          // The step ended, but past the whole scenario's limit.
          out.status = StepOutcome::Status::kFailed;
          out.message = "the scenario's timeout of " + timeout_text() +
                        " passed during this step";
          ok = false;
        }
      } catch (const StepError& e) {
        out.status = StepOutcome::Status::kFailed;
        if (!e.expected.empty()) out.expected = e.expected;
        if (!e.actual.empty()) out.actual = e.actual;
        out.message = e.message;
        if (Clock::now() >= deadline_) {
          out.message += " (the scenario's timeout of " + timeout_text() +
                         " passed during this step)";
        }
        ok = false;
      }
    }
    out.ms = ms_since(start);
    if (cut_taken_ && out.status != StepOutcome::Status::kNotRun) {
      // The crash matrix cut inside this step (a branch of it): what
      // happened after the kill is no verdict of the scenario's.
      out.message = std::string(prefix.empty() ? "the crash matrix cut inside it"
                                               : "ended after the crash matrix's kill") +
                    (out.message.empty() ? "" : ": " + out.message);
      out.status = StepOutcome::Status::kNotRun;
    }
    record(out);
    if (cut_taken_ && prefix.empty()) {
      return crash_matrix_step(steps, i + 1, out.index + "+", "check (crash matrix)",
                               "what the others saw of the kill, and what hostpeer still holds",
                               [&] { check_cut(); });
    }
    if (!ok || cut_taken_) {
      not_run(steps, i + 1, prefix, cut_taken_ ? "cut by the crash matrix" : "");
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
  if (!s_.played_against.empty() &&
      (options_.connect_socket.empty() || options_.against != s_.played_against)) {
    return finish(ScenarioOutcome::Status::kSkipped, "it is played against " + s_.played_against +
                                                         " (run --connect SOCKET --against " +
                                                         s_.played_against + ")");
  }
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
  watch_.emplace(socket_path());
  if (options_.kill) {
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
  if (passed && options_.kill && !cut_taken_) {
    return finish(ScenarioOutcome::Status::kFailed,
                  "the crash matrix's cut (" + options_.kill->describe() + ") was never reached");
  }
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
  // Its connections' traces (VMCI_TRACE) name the actor, so that `record`
  // knows a new child of the same actor for a reconnect. Set before any
  // thread starts.
  ::setenv("VMCI_TRACE_LABEL", scenario.actors[0].name.c_str(), 1);
  RunOptions options;
  options.connect_socket = "(the runner's hostpeer)";  // never starts one of its own
  const Progress quiet;
  Run run(scenario, quiet, options);
  serve_requests(in_fd, out_fd, [&](const json& request) { return run.serve(request); });
  return 0;
}

std::vector<KillPoint> kill_points(const Scenario& scenario, const std::string& actor) {
  std::vector<KillPoint> cuts;
  auto add = [&](const Step& step, const std::string& index) {
    cuts.push_back({actor, index, false, step.op});
    const OpSpec* spec = find_op(step.op);
    if (spec != nullptr && spec->kind == OpKind::kStream)
      cuts.push_back({actor, index, true, step.op});
  };
  for (size_t i = 0; i < scenario.steps.size(); ++i) {
    const Step& step = scenario.steps[i];
    add(step, std::to_string(i + 1));
    for (size_t b = 0; b < step.branches.size(); ++b) {
      for (size_t j = 0; j < step.branches[b].size(); ++j) {
        add(step.branches[b][j],
            std::to_string(i + 1) + "/" + std::to_string(b + 1) + "." + std::to_string(j + 1));
      }
    }
  }
  return cuts;
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
