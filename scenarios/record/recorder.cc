#include "record/recorder.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>

#include "runner/ops/op_table.h"
#include "vmci/host/limits.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"
#include "vmci/vmci_defs.h"

namespace vmci::scenario {
namespace {

using nlohmann::json;
using ordered = nlohmann::ordered_json;

vmci_handle handle_of(const json& j) {
  return VMCI_MAKE_HANDLE(j.value("context", VMCI_INVALID_ID), j.value("resource", VMCI_INVALID_ID));
}
uint64_t key_of(const json& j) { return proto::handle_key(handle_of(j)); }

// The op a traced call becomes (op_table.h: RecordedFrom::kCall or
// kDataCall), or null for a call that no op records.
const OpSpec* recorded_call(const std::string& op) {
  if (const OpSpec* spec = find_recorded(RecordedFrom::kCall, op)) return spec;
  return find_recorded(RecordedFrom::kDataCall, op);
}

// A queue pair's data call: its step waits for the pair's model, and a
// host endpoint's shows whether its peer was attached.
bool is_data_call(const std::string& op) {
  return find_recorded(RecordedFrom::kDataCall, op) != nullptr;
}

// An expectation for a recorded result: a status by name, else the number.
ordered expect_of(int64_t result) {
  if (result < 0) {
    const auto name = proto::status_name(result);
    if (!name.empty()) return std::string(name);
  }
  return result;
}

// One traced endpoint. Several endpoints are one actor when each later one
// is the same program's connection again (a reconnect): `continues` names
// the endpoint it takes over from.
struct ActorInfo {
  std::string ep;
  std::string name;
  std::string label;  // the open line's "label" (a process actor's name), or empty
  bool host = false;
  vmci_id cid = VMCI_INVALID_ID;
  vmci_id requested_cid = VMCI_INVALID_ID;
  uint32_t priv_flags = 0;
  int64_t pid = 0;
  uint64_t open_t = 0;
  bool traced_close = false;
  std::optional<uint64_t> end_t;    // its close line, or hostpeer removing its connection
  std::optional<size_t> continues;  // the endpoint this one reconnects in place of
  bool continued = false;           // a later endpoint reconnects in its place
};

// One queue of a modelled pair: bytes in it as the merged order has them.
struct QueueModel {
  uint64_t size = 0;
  uint64_t ready = 0;
  uint64_t enqueued = 0, dequeued = 0;  // totals, for the indexes
  uint64_t free() const { return size - 1 - ready; }
};

struct PairModel {
  bool modelled = false;    // both endpoints are traced
  QueueModel queue[2];      // [0]: the creator's produce queue, [1]: its consume queue
  int attaches_emitted = 0;
  int detaches_emitted = 0;
};

struct QpInfo {
  std::string var;
  uint64_t pair = 0;  // handle key
  bool creator = false;
};

// One thing that happened, to be played as zero or more steps.
struct Event {
  const TraceLine* line = nullptr;  // null: a kill that hostpeer saw
  size_t actor = 0;                 // kNoActor: hostpeer restarting
  uint64_t t = 0;
};
constexpr size_t kNoActor = SIZE_MAX;

enum class Readiness { kReady, kWait, kDrop };

// Handles of different kinds may have the same value (a guest's first
// doorbell and its first queue pair both get resource 1024, say).
enum class HandleKind { kDatagram, kDoorbell, kQueuePair };

class Recorder {
 public:
  Recorder(const std::vector<TraceLine>& lines, const RecordOptions& options, Recording* out)
      : lines_(lines), options_(options), out_(out) {}

  bool run(std::string* error);

 private:
  bool find_actors(std::string* error);
  // When hostpeer's trace says it removed the connection of endpoint `a`.
  std::optional<uint64_t> removal_time(const ActorInfo& a) const;
  void link_reconnects();
  void add_hostpeer_restarts();
  void find_pairs();
  void find_causes();
  void queue_events();
  void add_hostpeer_kills();
  void schedule();
  Readiness readiness(const Event& e);
  Readiness data_readiness(const Event& e, const json& f);
  void emit(const Event& e);
  void emit_call(const ActorInfo& a, const json& f);
  void emit_data_call(const ActorInfo& a, const json& f);
  void emit_callback(const ActorInfo& a, const json& f);
  ordered fold_repeats(const std::vector<ordered>& steps) const;
  ordered build_scenario() const;

  std::string context_ref_name(vmci_id cid) const;
  ordered context_ref(vmci_id cid) const;
  ordered handle_ref(HandleKind kind, const json& h) const;
  ordered flag_names(std::span<const proto::NamedValue> table, uint32_t flags);
  std::string bind(const ActorInfo& owner, const char* prefix, HandleKind kind, uint64_t key);
  // Is `a` the actor written alone (RecordOptions::actor)?
  bool alone(const ActorInfo& a) const {
    return !options_.actor.empty() && a.name == options_.actor;
  }
  // Is this actor's part written (all are, unless RecordOptions::actor)?
  bool written(const std::string& actor) const {
    return options_.actor.empty() || actor == options_.actor;
  }
  QpInfo* qpair_of(const ActorInfo& a, const json& f);
  QueueModel* queue_of(const QpInfo& qp, bool produce);
  ordered step(const ActorInfo& a, std::string_view op) const {
    return ordered{{"op", std::string(op)}, {"actor", a.name}};
  }
  void add(ordered s) { steps_.push_back(std::move(s)); }
  void warn(std::string w) { out_->warnings.push_back(std::move(w)); }

  const std::vector<TraceLine>& lines_;
  const RecordOptions& options_;
  Recording* out_;

  std::vector<ActorInfo> actors_;
  std::map<std::string, size_t> actor_of_ep_;
  std::map<vmci_id, std::string> guest_names_;  // recorded cid -> actor name
  // An actor's context id now, in the order the steps are written: a
  // guest that reconnected has a new one, and its old id is a number.
  mutable std::map<std::string, vmci_id> current_cid_;
  std::set<std::string> pinned_;  // guest actors whose context_id the scenario asks for
  std::map<std::pair<HandleKind, uint64_t>, std::string> handle_vars_;  // -> variable
  std::map<std::string, std::string> var_owners_;  // variable -> the actor whose step binds it
  std::map<std::string, int> var_counts_;
  std::map<std::pair<size_t, uint64_t>, std::string> sub_vars_;  // (actor, sub id)
  std::map<std::pair<size_t, std::string>, QpInfo> qpairs_;      // (actor, trace's qpair id)
  std::map<uint64_t, PairModel> pairs_;
  std::map<uint64_t, int> rings_;                                // doorbell -> rings not yet taken
  std::map<uint64_t, std::multiset<uint64_t>> unplayed_notifies_;  // doorbell -> start times
  std::map<uint64_t, std::multiset<uint64_t>> unplayed_sends_;     // dst -> start times
  std::multiset<std::pair<uint64_t, std::string>> sent_;        // (dst, payload) played, not taken
  std::set<size_t> closed_;
  // A pair's side: (pair, is the creator's). A host endpoint sees whether its
  // peer is attached, so its calls that saw the peer there come before the
  // peer's detach, and those that saw it gone (NOTATTACHED) after.
  using Side = std::pair<uint64_t, bool>;
  std::map<std::pair<size_t, std::string>, Side> sides_;  // (actor, trace's qpair id)
  std::map<Side, std::multiset<uint64_t>> saw_attached_;  // unplayed calls, by the caller's side
  std::set<Side> gone_sides_;                             // detached, or their actor went
  std::optional<Side> side_of(size_t actor, const json& f) const;
  bool saw_peer_attached(const ActorInfo& a, const json& f) const;
  bool peer_calls_pending(size_t actor, std::optional<std::string> qpair_id) const;
  // Has `actor` a QP_PEER_DETACH of its pair `qpair_id` still to play? It
  // heard its peer leave, so its own detach took effect after that.
  bool peer_detach_unplayed(size_t actor, const std::string& qpair_id) const;
  void forget(const Event& e);
  std::multiset<uint64_t>* causes_of(const json& f);
  void actor_gone(size_t actor);
  std::map<std::pair<int64_t, int64_t>, std::deque<Event>> threads_;  // (pid, tid) -> events
  std::vector<ordered> steps_;
  std::optional<json> limits_;
  uint64_t first_t_ = UINT64_MAX, last_t_ = 0;
  size_t forced_ = 0;
};

bool Recorder::run(std::string* error) {
  if (!find_actors(error)) return false;
  if (!options_.actor.empty() &&
      std::none_of(actors_.begin(), actors_.end(),
                   [&](const ActorInfo& a) { return a.name == options_.actor; })) {
    std::string names;
    for (const ActorInfo& a : actors_) names += (names.empty() ? "" : ", ") + a.name;
    *error = "no actor \"" + options_.actor + "\" in this recording (its actors: " + names + ")";
    return false;
  }
  find_pairs();
  find_causes();
  queue_events();
  add_hostpeer_kills();
  add_hostpeer_restarts();
  schedule();
  if (forced_ > 0) {
    warn(std::to_string(forced_) +
         " step(s) had to be played before what they wait for was (traces from every "
         "endpoint of the conversation are needed): the replay may fail there");
  }
  out_->steps = steps_.size();
  out_->scenario = build_scenario();
  return true;
}

bool Recorder::find_actors(std::string* error) {
  std::set<std::string> seen_eps;
  for (const TraceLine& line : lines_) {
    first_t_ = std::min(first_t_, line.t);
    last_t_ = std::max(last_t_, line.t);
    const json& f = line.fields;
    if (line.from_hostpeer) {
      if (f["kind"] == "start" && f.contains("limits")) limits_ = f["limits"];
      continue;
    }
    const std::string ep = f["ep"];
    seen_eps.insert(ep);
    if (f["kind"] == "open") {
      if (actor_of_ep_.count(ep)) {
        *error = line.where + ": a second \"open\" line for endpoint " + ep;
        return false;
      }
      ActorInfo a;
      a.ep = ep;
      a.host = f.value("role", "") == "host";
      a.cid = f.value("cid", VMCI_INVALID_ID);
      a.requested_cid = f.value("requested_cid", VMCI_INVALID_ID);
      a.priv_flags = f.value("priv_flags", 0u);
      a.pid = f.value("pid", int64_t{0});
      a.label = f.value("label", "");
      a.open_t = line.t;
      actor_of_ep_[ep] = actors_.size();
      actors_.push_back(a);
    }
  }
  for (const std::string& ep : seen_eps) {
    if (!actor_of_ep_.count(ep)) {
      *error = "endpoint " + ep + " has lines but no \"open\" line: is its trace cut short?";
      return false;
    }
  }
  if (actors_.empty()) {
    *error = "no endpoint's trace among the files (set VMCI_TRACE for the endpoints)";
    return false;
  }
  for (const TraceLine& line : lines_) {
    if (!line.from_hostpeer && line.fields["kind"] == "close") {
      ActorInfo& a = actors_[actor_of_ep_[line.fields["ep"]]];
      a.traced_close = true;
      a.end_t = line.t;
    }
  }
  for (ActorInfo& a : actors_) {
    if (!a.end_t) a.end_t = removal_time(a);
  }
  link_reconnects();
  std::vector<size_t> order(actors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return actors_[x].open_t < actors_[y].open_t; });
  int hosts = 0, guests = 0;
  for (size_t i : order) {
    ActorInfo& a = actors_[i];
    if (a.continues) {
      a.name = actors_[*a.continues].name;  // opened earlier: named already
    } else if (a.host) {
      a.name = ++hosts == 1 ? "host" : "host" + std::to_string(hosts);
    } else {
      a.name = "vm" + std::to_string(++guests);
      current_cid_[a.name] = a.cid;
    }
  }
  // A context id names an actor when one actor alone had it. The scenario
  // asks for it (so that bytes naming it compare equal) unless the actor
  // reconnects without asking for an id: then the replay's hostpeer picks.
  std::map<vmci_id, std::set<std::string>> cid_users;
  std::map<std::string, bool> reconnects_freely;
  for (const ActorInfo& a : actors_) {
    if (a.host) continue;
    cid_users[a.cid].insert(a.name);
    if (a.continues && a.requested_cid == VMCI_INVALID_ID) reconnects_freely[a.name] = true;
  }
  for (const auto& [cid, users] : cid_users) {
    if (users.size() == 1) guest_names_[cid] = *users.begin();
  }
  for (const ActorInfo& a : actors_) {
    if (!a.host && !a.continues && guest_names_.count(a.cid) && !reconnects_freely[a.name]) {
      pinned_.insert(a.name);
    }
  }
  return true;
}

std::optional<uint64_t> Recorder::removal_time(const ActorInfo& a) const {
  // hostpeer's peer ids start again when it restarts: a removal counts
  // only before the next start.
  std::vector<uint64_t> starts;
  for (const TraceLine& line : lines_) {
    if (line.from_hostpeer && line.fields["kind"] == "start") starts.push_back(line.t);
  }
  std::optional<int64_t> peer;
  uint64_t admitted = 0;
  for (const TraceLine& line : lines_) {
    const json& f = line.fields;
    if (!line.from_hostpeer || f["kind"] != "admit" || f.value("status", -1) != VMCI_SUCCESS)
      continue;
    if (f.value("pid", int64_t{-1}) != a.pid || f.value("cid", VMCI_INVALID_ID) != a.cid ||
        (f.value("role", "") == "host") != a.host || line.t > a.open_t || line.t < admitted)
      continue;
    peer = f.value("peer", int64_t{0});
    admitted = line.t;
  }
  if (!peer) return std::nullopt;
  uint64_t until = UINT64_MAX;
  for (const uint64_t t : starts) {
    if (t > admitted) until = std::min(until, t);
  }
  std::optional<uint64_t> removed;
  for (const TraceLine& line : lines_) {
    const json& f = line.fields;
    if (line.from_hostpeer && f["kind"] == "remove" && f.value("peer", int64_t{0}) == *peer &&
        line.t >= admitted && line.t < until && (!removed || line.t < *removed)) {
      removed = line.t;
    }
  }
  return removed;
}

// An endpoint that opens after an earlier one of the same program (the
// same label, which a process actor's child writes; else the same process
// and role) has ended, asking for the same context id if any, reconnects
// in its place: the latest to end such.
void Recorder::link_reconnects() {
  for (size_t i = 0; i < actors_.size(); ++i) {
    ActorInfo& a = actors_[i];
    std::optional<size_t> best;
    for (size_t j = 0; j < actors_.size(); ++j) {
      const ActorInfo& p = actors_[j];
      if (j == i || p.continued || p.open_t >= a.open_t || !p.end_t || *p.end_t > a.open_t)
        continue;
      if (p.host != a.host || p.label != a.label || p.requested_cid != a.requested_cid) continue;
      if (a.label.empty() && p.pid != a.pid) continue;
      if (!best || *p.end_t > *actors_[*best].end_t) best = j;
    }
    if (best) {
      a.continues = best;
      actors_[*best].continued = true;
    }
  }
}

// hostpeer's trace starts again where it restarted: restart_hostpeer there.
void Recorder::add_hostpeer_restarts() {
  std::vector<const TraceLine*> starts;
  for (const TraceLine& line : lines_) {
    if (line.from_hostpeer && line.fields["kind"] == "start") starts.push_back(&line);
  }
  std::stable_sort(starts.begin(), starts.end(),
                   [](const TraceLine* x, const TraceLine* y) { return x->t < y->t; });
  for (size_t i = 1; i < starts.size(); ++i) {
    threads_[{-2, 0}].push_back(Event{starts[i], kNoActor, starts[i]->t});
  }
}

// Which pairs both of whose endpoints are traced: only those are modelled.
void Recorder::find_pairs() {
  std::map<uint64_t, std::vector<const json*>> allocs;
  std::vector<const TraceLine*> sorted;
  for (const TraceLine& line : lines_) sorted.push_back(&line);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const TraceLine* x, const TraceLine* y) { return x->t < y->t; });
  for (const TraceLine* line : sorted) {
    const json& f = line->fields;
    if (!line->from_hostpeer && f["kind"] == "call" && f["op"] == "qpair_alloc" &&
        f.value("result", -1) == VMCI_SUCCESS && f.contains("out") && f.contains("qpair")) {
      const uint64_t key = key_of(f["out"]);
      allocs[key].push_back(&f);
      sides_[{actor_of_ep_[f["ep"]], f["qpair"]}] = Side{key, allocs[key].size() == 1};
    }
  }
  for (const TraceLine* line : sorted) {
    const json& f = line->fields;
    if (line->from_hostpeer || f["kind"] != "call") continue;
    const size_t actor = actor_of_ep_[f["ep"]];
    if (auto side = side_of(actor, f); side && saw_peer_attached(actors_[actor], f)) {
      saw_attached_[*side].insert(line->t);
    }
  }
  for (auto& [key, list] : allocs) {
    PairModel& pair = pairs_[key];
    pair.modelled = list.size() >= 2;
    const json& creator = *list.front();
    pair.queue[0].size = creator.value("produce_size", uint64_t{0});
    pair.queue[1].size = creator.value("consume_size", uint64_t{0});
  }
}

std::optional<Recorder::Side> Recorder::side_of(size_t actor, const json& f) const {
  if (!f.contains("qpair")) return std::nullopt;
  auto it = sides_.find({actor, f["qpair"].get<std::string>()});
  if (it == sides_.end()) return std::nullopt;
  return it->second;
}

// A host endpoint's data call whose result shows its peer attached (a
// count of 0 may mean either, and says nothing).
bool Recorder::saw_peer_attached(const ActorInfo& a, const json& f) const {
  const std::string op = f.value("op", "");
  if (!a.host || !is_data_call(op)) return false;
  const int64_t result = f.value("result", int64_t{0});
  const bool count = op.find("free_space") != std::string::npos ||
                     op.find("buf_ready") != std::string::npos;
  return result != VMCI_ERROR_QUEUEPAIR_NOTATTACHED && !(count && result == 0);
}

// Are there calls still to play of the peers of this actor's pairs (of
// the one named, else of all) that saw this actor attached?
bool Recorder::peer_calls_pending(size_t actor, std::optional<std::string> qpair_id) const {
  for (const auto& [owner, side] : sides_) {
    if (owner.first != actor || (qpair_id && owner.second != *qpair_id)) continue;
    if (gone_sides_.count(side)) continue;
    auto it = saw_attached_.find(Side{side.first, !side.second});
    if (it != saw_attached_.end() && !it->second.empty()) return true;
  }
  return false;
}

bool Recorder::peer_detach_unplayed(size_t actor, const std::string& qpair_id) const {
  const auto side = sides_.find({actor, qpair_id});
  if (side == sides_.end()) return false;
  for (const auto& [thread, queue] : threads_) {
    for (const Event& e : queue) {
      if (!e.line || e.actor != actor) continue;
      const json& f = e.line->fields;
      if (f["kind"] != "callback" || f.value("op", "") != "event" ||
          f.value("event", "") != "QP_PEER_DETACH") {
        continue;
      }
      // (A local pair's: its own other side left, which is no peer's end.)
      const json data = f.value("data", json::object());
      if (data.contains("handle") && key_of(data["handle"]) == side->second.first &&
          data.value("peer_id", VMCI_INVALID_ID) != actors_[actor].cid) {
        return true;
      }
    }
  }
  return false;
}

void Recorder::actor_gone(size_t actor) {
  closed_.insert(actor);
  for (const auto& [owner, side] : sides_) {
    if (owner.first == actor) gone_sides_.insert(side);
  }
}

// A played or dropped event no longer holds anything back.
void Recorder::forget(const Event& e) {
  if (!e.line) return;
  const json& f = e.line->fields;
  if (auto* times = causes_of(f)) {
    if (auto it = times->find(e.t); it != times->end()) times->erase(it);
  }
  if (f["kind"] != "call") return;
  if (auto side = side_of(e.actor, f); side && saw_peer_attached(actors_[e.actor], f)) {
    auto& times = saw_attached_[*side];
    if (auto it = times.find(e.t); it != times.end()) times.erase(it);
  }
}

// Every ring and every send, so that a callback can wait for its cause.
void Recorder::find_causes() {
  for (const TraceLine& line : lines_) {
    if (auto* times = line.from_hostpeer ? nullptr : causes_of(line.fields)) times->insert(line.t);
  }
}

// Where a successful ring or send is kept until it is played: the start
// times of those of its doorbell or destination.
std::multiset<uint64_t>* Recorder::causes_of(const json& f) {
  if (f["kind"] != "call" || f.value("result", -1) < 0) return nullptr;
  if (f["op"] == "doorbell_notify") return &unplayed_notifies_[key_of(f["handle"])];
  if (f["op"] == "datagram_send" && f.contains("dst")) return &unplayed_sends_[key_of(f["dst"])];
  return nullptr;
}

void Recorder::queue_events() {
  std::vector<Event> events;
  for (const TraceLine& line : lines_) {
    if (line.from_hostpeer) continue;
    const size_t actor = actor_of_ep_[line.fields["ep"]];
    // An endpoint's open is a step only where it reconnects an actor.
    if (line.fields["kind"] == "open" && !actors_[actor].continues) continue;
    events.push_back(Event{&line, actor, line.t});
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& x, const Event& y) { return x.t < y.t; });
  for (const Event& e : events) {
    const json& f = e.line->fields;
    threads_[{f.value("pid", int64_t{0}), f.value("tid", int64_t{0})}].push_back(e);
  }
}

// An endpoint whose trace ends without a "close" line (its process was
// killed, or exited without closing): hostpeer's trace says when its
// connection went.
void Recorder::add_hostpeer_kills() {
  for (size_t i = 0; i < actors_.size(); ++i) {
    const ActorInfo& a = actors_[i];
    if (a.traced_close) continue;
    const std::optional<uint64_t> removed = a.end_t;
    if (removed) {
      threads_[{-1, static_cast<int64_t>(i)}].push_back(Event{nullptr, i, *removed});
    } else {
      warn("actor " + a.name + " (endpoint " + a.ep +
           ") has no \"close\" line and no hostpeer trace says when it went: it stays to the "
           "end of the replay");
    }
  }
}

// Plays the threads' events in start order, each once it is ready.
void Recorder::schedule() {
  for (;;) {
    std::deque<Event>* best = nullptr;
    std::deque<Event>* earliest = nullptr;
    Readiness best_readiness = Readiness::kWait;
    for (auto& [thread, queue] : threads_) {
      if (queue.empty()) continue;
      if (!earliest || queue.front().t < earliest->front().t) earliest = &queue;
      if (best && queue.front().t >= best->front().t) continue;
      const Readiness r = readiness(queue.front());
      if (r != Readiness::kWait) {
        best = &queue;
        best_readiness = r;
      }
    }
    if (!earliest) return;
    if (!best) {
      ++forced_;
      best = earliest;
      best_readiness = Readiness::kReady;
    }
    const Event e = best->front();
    best->pop_front();
    forget(e);
    if (best_readiness == Readiness::kReady) {
      emit(e);
    } else if (e.line) {
      const json& f = e.line->fields;
      if (f["kind"] == "call") ++out_->dropped_polls;
      if (f["kind"] == "callback" && f["op"] == "datagram" && !closed_.count(e.actor)) {
        warn(e.line->where + ": a datagram from " + handle_ref(HandleKind::kDatagram, f["src"]).dump() +
             " that no traced endpoint sent: its expectation is left out");
      }
    }
  }
}

Readiness Recorder::readiness(const Event& e) {
  if (!e.line) return peer_calls_pending(e.actor, std::nullopt) ? Readiness::kWait : Readiness::kReady;
  if (e.actor == kNoActor) return Readiness::kReady;  // hostpeer restarting
  const json& f = e.line->fields;
  const std::string kind = f["kind"];
  if (kind == "open") {
    // A reconnect comes after the end of the connection it replaces.
    return closed_.count(*actors_[e.actor].continues) ? Readiness::kReady : Readiness::kWait;
  }
  if (kind == "close") {
    return peer_calls_pending(e.actor, std::nullopt) ? Readiness::kWait : Readiness::kReady;
  }
  if (kind == "call") {
    const std::string op = f["op"];
    if (op == "qpair_detach" && f.contains("qpair")) {
      const std::string qpair = f["qpair"];
      return peer_calls_pending(e.actor, qpair) || peer_detach_unplayed(e.actor, qpair)
                 ? Readiness::kWait
                 : Readiness::kReady;
    }
    if (is_data_call(op)) return data_readiness(e, f);
    return Readiness::kReady;
  }
  if (kind != "callback") return Readiness::kReady;
  // A callback that ran while its endpoint was closing: the replay's actor
  // is gone by then and has no inbox to expect it in.
  if (closed_.count(e.actor)) return Readiness::kDrop;
  const std::string op = f["op"];
  if (op == "doorbell") {
    const uint64_t key = key_of(f["handle"]);
    if (rings_[key] > 0) return Readiness::kReady;
    const auto& unplayed = unplayed_notifies_[key];
    // Its ring is yet to be played; else an earlier expect took it (rings
    // coalesce) and this callback has nothing of its own to expect.
    return !unplayed.empty() && *unplayed.begin() < e.t ? Readiness::kWait : Readiness::kDrop;
  }
  if (op == "datagram") {
    const uint64_t key = key_of(f["handle"]);
    if (sent_.count({key, f.value("payload_base64", "")})) return Readiness::kReady;
    const auto& unplayed = unplayed_sends_[key];
    return !unplayed.empty() && *unplayed.begin() < e.t ? Readiness::kWait : Readiness::kDrop;
  }
  if (op == "event") {
    const std::string event = f.value("event", "");
    const json data = f.value("data", json::object());
    if (event == "QP_PEER_ATTACH" && data.contains("handle")) {
      auto it = pairs_.find(key_of(data["handle"]));
      if (it != pairs_.end() && it->second.modelled && it->second.attaches_emitted < 2)
        return Readiness::kWait;
    }
    if (event == "QP_PEER_DETACH" && data.contains("handle")) {
      auto it = pairs_.find(key_of(data["handle"]));
      const vmci_id peer = data.value("peer_id", VMCI_INVALID_ID);
      bool peer_gone = true;
      for (size_t i = 0; i < actors_.size(); ++i) {
        if (!actors_[i].host && actors_[i].cid == peer && !closed_.count(i)) peer_gone = false;
      }
      if (it != pairs_.end() && it->second.modelled && it->second.detaches_emitted == 0 &&
          !peer_gone)
        return Readiness::kWait;
    }
    if (event == "CTX_REMOVED") {
      const vmci_id cid = data.value("context_id", VMCI_INVALID_ID);
      for (size_t i = 0; i < actors_.size(); ++i) {
        if (!actors_[i].host && actors_[i].cid == cid && !closed_.count(i))
          return Readiness::kWait;
      }
    }
  }
  return Readiness::kReady;
}

Readiness Recorder::data_readiness(const Event& e, const json& f) {
  const ActorInfo& a = actors_[e.actor];
  QpInfo* qp = qpair_of(a, f);
  if (!qp) return Readiness::kReady;
  const std::string op = f["op"];
  const int64_t result = f.value("result", int64_t{0});
  if (a.host && result == VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
    // After the peer went (or before it came).
    const PairModel& pair = pairs_[qp->pair];
    const bool peer_there = pair.attaches_emitted >= 2 && !gone_sides_.count(Side{qp->pair, !qp->creator});
    return peer_there ? Readiness::kWait : Readiness::kReady;
  }
  const bool enqueue = op == "qpair_enqueue";
  if (!enqueue && op != "qpair_dequeue" && op != "qpair_peek") return Readiness::kReady;
  QueueModel* q = queue_of(*qp, enqueue);
  if (!q) return Readiness::kReady;
  const uint64_t room = enqueue ? q->free() : q->ready;
  if (result > 0) return room >= static_cast<uint64_t>(result) ? Readiness::kReady : Readiness::kWait;
  const int64_t nothing = enqueue ? VMCI_ERROR_QUEUEPAIR_NOSPACE : VMCI_ERROR_QUEUEPAIR_NODATA;
  if (result == nothing || result == 0) return room > 0 ? Readiness::kDrop : Readiness::kReady;
  return Readiness::kReady;
}

QpInfo* Recorder::qpair_of(const ActorInfo& a, const json& f) {
  if (!f.contains("qpair")) return nullptr;
  auto it = qpairs_.find({actor_of_ep_[a.ep], f["qpair"].get<std::string>()});
  return it == qpairs_.end() ? nullptr : &it->second;
}

QueueModel* Recorder::queue_of(const QpInfo& qp, bool produce) {
  auto it = pairs_.find(qp.pair);
  if (it == pairs_.end() || !it->second.modelled) return nullptr;
  // The creator produces into queue 0; its peer into queue 1.
  return &it->second.queue[qp.creator == produce ? 0 : 1];
}

void Recorder::emit(const Event& e) {
  if (e.actor == kNoActor) {
    add(ordered{{"op", std::string(find_op("restart_hostpeer")->name)}});
    return;
  }
  ActorInfo& a = actors_[e.actor];
  if (!e.line) {  // hostpeer saw its connection go
    add(step(a, find_recorded(RecordedFrom::kClose, "kill")->name));
    actor_gone(e.actor);
    return;
  }
  const json& f = e.line->fields;
  const std::string kind = f["kind"];
  if (kind == "open") {
    add(step(a, find_op("reconnect")->name));
    if (!a.host) current_cid_[a.name] = a.cid;
    return;
  }
  if (kind == "close") {
    const bool killed = f.value("how", "") == "kill";  // else a clean close
    add(step(a, find_recorded(RecordedFrom::kClose, killed ? "kill" : "disconnect")->name));
    actor_gone(e.actor);
  } else if (kind == "callback") {
    emit_callback(a, f);
  } else if (kind == "call") {
    const std::string op = f["op"];
    const OpSpec* spec = recorded_call(op);
    if (spec == nullptr) {
      warn("an unknown call \"" + op + "\" of actor " + a.name + " is left out");
    } else if (spec->recorded.from == RecordedFrom::kDataCall) {
      emit_data_call(a, f);
    } else {
      emit_call(a, f);
    }
  }
}

void Recorder::emit_call(const ActorInfo& a, const json& f) {
  const std::string op = f["op"];
  const int64_t result = f.value("result", int64_t{0});
  const bool ok = result >= 0;
  ordered s = step(a, recorded_call(op)->name);
  if (op == "get_context_id") {
    if (a.host || (guest_names_.count(a.cid) && pinned_.count(a.name))) s["expect"] = result;
  } else if (op == "datagram_create_handle") {
    const vmci_id resource = f.value("resource", VMCI_INVALID_ID);
    s["resource"] = resource == VMCI_INVALID_ID ? ordered("any") : ordered(resource);
    s["flags"] = flag_names(proto::datagram_flags(), f.value("flags", 0u));
    s["priv_flags"] = flag_names(proto::privilege_flags(), f.value("priv_flags", 0u));
    s["expect"] = expect_of(result);
    if (ok && f.contains("out")) s["as"] = bind(a, "$dg", HandleKind::kDatagram, key_of(f["out"]));
  } else if (op == "datagram_destroy_handle" || op == "doorbell_destroy") {
    s["handle"] = handle_ref(op == "doorbell_destroy" ? HandleKind::kDoorbell : HandleKind::kDatagram,
                             f["handle"]);
    s["expect"] = expect_of(result);
  } else if (op == "datagram_send") {
    if (!f.contains("dst")) return;  // a null datagram: nothing to replay
    s["src"] = handle_ref(HandleKind::kDatagram, f["src"]);
    s["dst"] = handle_ref(HandleKind::kDatagram, f["dst"]);
    // An oversized payload was refused unread: only its size is known.
    s["payload"] = f.contains("payload_base64")
                       ? ordered{{"base64", f["payload_base64"]}}
                       : ordered{{"zeros", f.value("payload_size", uint64_t{0})}};
    s["expect"] = expect_of(result);
    const uint64_t dst = key_of(f["dst"]);
    if (ok) sent_.insert({dst, f.value("payload_base64", "")});
  } else if (op == "event_subscribe") {
    s["event"] = f.value("event", "");
    s["expect"] = expect_of(result);
    if (ok && f.contains("subscription")) {
      const std::string var = "$sub" + std::to_string(++var_counts_["$sub"]);
      sub_vars_[{actor_of_ep_[a.ep], f["subscription"].get<uint64_t>()}] = var;
      s["as"] = var;
    }
  } else if (op == "event_unsubscribe") {
    const uint64_t sub = f.value("subscription", uint64_t{0});
    auto it = sub_vars_.find({actor_of_ep_[a.ep], sub});
    s["subscription"] = it != sub_vars_.end() ? ordered(it->second) : ordered(sub);
    s["expect"] = expect_of(result);
  } else if (op == "qpair_alloc") {
    const json in = f.value("handle", json::object());
    if (!in.empty() && !proto::is_invalid(handle_of(in))) s["handle"] = handle_ref(HandleKind::kQueuePair, in);
    s["produce_size"] = f.value("produce_size", uint64_t{0});
    s["consume_size"] = f.value("consume_size", uint64_t{0});
    const vmci_id peer = f.value("peer", VMCI_INVALID_ID);
    if (peer != VMCI_INVALID_ID) s["peer"] = context_ref(peer);
    s["flags"] = flag_names(proto::queue_pair_flags(), f.value("flags", 0u));
    s["priv_flags"] = flag_names(proto::privilege_flags(), f.value("priv_flags", 0u));
    s["expect"] = expect_of(result);
    if (ok && f.contains("out") && f.contains("qpair")) {
      const uint64_t key = key_of(f["out"]);
      const std::string var = "$qp" + std::to_string(++var_counts_["$qp"]);
      PairModel& pair = pairs_[key];
      const auto side = side_of(actor_of_ep_[a.ep], f);
      QpInfo info{var, key, side ? side->second : pair.attaches_emitted == 0};
      ++pair.attaches_emitted;
      if (info.creator) handle_vars_[{HandleKind::kQueuePair, key}] = var + ".handle";
      var_owners_[var + ".handle"] = a.name;
      qpairs_[{actor_of_ep_[a.ep], f["qpair"].get<std::string>()}] = info;
      s["as"] = var;
    }
  } else if (op == "qpair_detach") {
    QpInfo* qp = qpair_of(a, f);
    if (!qp) {
      warn("actor " + a.name + " detached a queue pair the trace did not see allocated");
      return;
    }
    s["qpair"] = qp->var;
    s["expect"] = expect_of(result);
    ++pairs_[qp->pair].detaches_emitted;
    gone_sides_.insert(Side{qp->pair, qp->creator});
  } else if (op == "doorbell_create") {
    const json in = f.value("handle", json::object());
    const vmci_handle h = handle_of(in);
    if (!in.empty() && !proto::is_invalid(h) && h.resource != VMCI_INVALID_ID) {
      s["handle"] = ordered{{"context", context_ref(h.context)}, {"resource", h.resource}};
    }
    s["flags"] = flag_names(proto::doorbell_flags(), f.value("flags", 0u));
    s["priv_flags"] = flag_names(proto::privilege_flags(), f.value("priv_flags", 0u));
    s["expect"] = expect_of(result);
    if (ok && f.contains("out")) s["as"] = bind(a, "$db", HandleKind::kDoorbell, key_of(f["out"]));
  } else if (op == "doorbell_notify") {
    s["handle"] = handle_ref(HandleKind::kDoorbell, f["handle"]);
    s["priv_flags"] = flag_names(proto::privilege_flags(), f.value("priv_flags", 0u));
    s["expect"] = expect_of(result);
    const uint64_t key = key_of(f["handle"]);
    if (ok) ++rings_[key];
  } else if (op != "hold_callbacks" && op != "release_callbacks") {
    // In the op table as recorded from calls, but not written here yet.
    warn("a call \"" + op + "\" of actor " + a.name +
         " is left out: the recorder cannot write it yet");
    return;
  }
  add(std::move(s));
}

void Recorder::emit_data_call(const ActorInfo& a, const json& f) {
  QpInfo* qp = qpair_of(a, f);
  const std::string op = f["op"];
  if (!qp) {
    warn("actor " + a.name + " used a queue pair the trace did not see allocated (" + op + ")");
    return;
  }
  const int64_t result = f.value("result", int64_t{0});
  ordered s = step(a, recorded_call(op)->name);
  s["qpair"] = qp->var;
  const bool enqueue = op == "qpair_enqueue";
  if (enqueue || op == "qpair_dequeue" || op == "qpair_peek") {
    QueueModel* q = queue_of(*qp, enqueue);
    const uint64_t size = f.value("size", uint64_t{0});
    const std::string base64 = f.value("data_base64", "");
    if (enqueue) {
      s["data"] = result > 0 ? ordered{{"base64", base64}} : ordered{{"zeros", size}};
    } else {
      s["size"] = result > 0 ? static_cast<uint64_t>(result) : size;
      if (result > 0) s["expect_data"] = {{"base64", base64}};
    }
    s["expect"] = expect_of(result);
    if (q && result > 0) {
      const auto n = static_cast<uint64_t>(result);
      if (enqueue) {
        q->ready += n;
        q->enqueued += n;
      } else if (op == "qpair_dequeue") {
        q->ready -= n;
        q->dequeued += n;
      }
    }
    if (alone(a)) {
      // Against a live program the peer's timing is its own: a poll that
      // found nothing may find something, so it is left out, and a call
      // that moved bytes waits for them (the streaming ops) instead.
      const int64_t nothing = enqueue ? VMCI_ERROR_QUEUEPAIR_NOSPACE : VMCI_ERROR_QUEUEPAIR_NODATA;
      if (result == 0 || result == nothing) {
        ++out_->dropped_polls;
        return;
      }
      if (result > 0 && op != "qpair_peek") {
        s = step(a, enqueue ? "qpair_write_all" : "qpair_read_all");
        s["qpair"] = qp->var;
        if (enqueue) {
          s["data"] = {{"base64", base64}};
        } else {
          s["length"] = result;
          s["expect_data"] = {{"base64", base64}};
        }
      }
    }
    add(std::move(s));
    return;
  }
  if (op == "qpair_get_produce_indexes" || op == "qpair_get_consume_indexes") {
    s["expect"] = expect_of(result);
    QueueModel* q = queue_of(*qp, op == "qpair_get_produce_indexes");
    const uint64_t tail = f.value("tail", uint64_t{0}), head = f.value("head", uint64_t{0});
    if (result == VMCI_SUCCESS && !alone(a) &&
        (!q || (q->enqueued % q->size == tail && q->dequeued % q->size == head))) {
      s["expect_indexes"] = {{"tail", tail}, {"head", head}};
    }
    add(std::move(s));
    return;
  }
  // The four counts.
  const bool produce = op.find("produce") != std::string::npos;
  QueueModel* q = queue_of(*qp, produce);
  std::optional<int64_t> modelled;
  if (q) {
    const bool free = op.find("free_space") != std::string::npos;
    modelled = static_cast<int64_t>(free ? q->free() : q->ready);
  }
  if (alone(a) && result >= 0) {
    s["note"] = "recorded " + std::to_string(result) + "; against a live program it may differ";
  } else if (!modelled || *modelled == result || result < 0) {
    s["expect"] = expect_of(result);
  } else {
    s["note"] = "recorded " + std::to_string(result) + "; in the merged order it is " +
                std::to_string(*modelled);
  }
  add(std::move(s));
}

void Recorder::emit_callback(const ActorInfo& a, const json& f) {
  const std::string op = f["op"];
  const OpSpec* spec = find_recorded(RecordedFrom::kCallback, op);
  if (spec == nullptr) return;  // a callback that no op expects
  ordered s = step(a, spec->name);
  if (op == "doorbell") {
    s["handle"] = handle_ref(HandleKind::kDoorbell, f["handle"]);
    rings_[key_of(f["handle"])] = 0;
    // Against a live program, rings coalesce as its timing has it: the
    // reads wait for their bytes instead.
    if (!alone(a)) add(std::move(s));
  } else if (op == "datagram") {
    const uint64_t key = key_of(f["handle"]);
    s["handle"] = handle_ref(HandleKind::kDatagram, f["handle"]);
    s["src"] = handle_ref(HandleKind::kDatagram, f["src"]);
    s["payload"] = {{"base64", f.value("payload_base64", "")}};
    if (auto it = sent_.find({key, f.value("payload_base64", "")}); it != sent_.end())
      sent_.erase(it);
    add(std::move(s));
  } else if (op == "event") {
    s["event"] = f.value("event", "");
    const json data = f.value("data", json::object());
    ordered expected = ordered::object();
    if (data.contains("context_id")) expected["context_id"] = context_ref(data["context_id"]);
    if (data.contains("handle")) expected["handle"] = handle_ref(HandleKind::kQueuePair, data["handle"]);
    if (data.contains("peer_id")) expected["peer_id"] = context_ref(data["peer_id"]);
    if (!expected.empty()) s["data"] = expected;
    add(std::move(s));
  }
}

std::string Recorder::context_ref_name(vmci_id cid) const {
  switch (cid) {
    case VMCI_HYPERVISOR_CONTEXT_ID: return "hypervisor";
    case VMCI_WELL_KNOWN_CONTEXT_ID: return "well_known";
    case VMCI_HOST_CONTEXT_ID: return "host";
    case VMCI_INVALID_ID: return "invalid";
  }
  auto it = guest_names_.find(cid);
  if (it == guest_names_.end()) return "";
  // After its actor reconnected, an old id is that context's, not the actor's.
  auto now = current_cid_.find(it->second);
  return now != current_cid_.end() && now->second != cid ? "" : it->second;
}

ordered Recorder::context_ref(vmci_id cid) const {
  const std::string name = context_ref_name(cid);
  // An actor left out of the scenario is named by the id it had.
  const bool left_out = guest_names_.count(cid) && !written(name);
  return name.empty() || left_out ? ordered(cid) : ordered(name);
}

ordered Recorder::handle_ref(HandleKind kind, const json& h) const {
  auto it = handle_vars_.find({kind, key_of(h)});
  // A variable bound by an actor left out of the scenario: its value.
  if (it != handle_vars_.end() && written(var_owners_.at(it->second))) return it->second;
  const vmci_handle v = handle_of(h);
  return ordered{{"context", context_ref(v.context)}, {"resource", v.resource}};
}

ordered Recorder::flag_names(std::span<const proto::NamedValue> table, uint32_t flags) {
  ordered names = ordered::array();
  uint32_t known = 0;
  for (const auto& entry : table) {
    const auto bit = static_cast<uint32_t>(entry.value);
    if (bit != 0 && (flags & bit) == bit && !(known & bit)) {
      names.push_back(std::string(entry.name));
      known |= bit;
    }
  }
  if (flags & ~known) {
    warn("flag bits " + std::to_string(flags & ~known) + " have no name in the format: left out");
  }
  return names;
}

std::string Recorder::bind(const ActorInfo& owner, const char* prefix, HandleKind kind,
                           uint64_t key) {
  const std::string var = prefix + std::to_string(++var_counts_[prefix]);
  handle_vars_[{kind, key}] = var;
  var_owners_[var] = owner.name;
  return var;
}

// Runs of three or more equal steps (polls, mostly) become one repeat.
ordered Recorder::fold_repeats(const std::vector<ordered>& steps) const {
  ordered folded = ordered::array();
  for (size_t i = 0; i < steps.size();) {
    size_t j = i + 1;
    while (j < steps.size() && steps[j] == steps[i] && !steps[i].contains("as")) ++j;
    if (j - i >= 3) {
      folded.push_back(ordered{{"op", "repeat"},
                               {"count", j - i},
                               {"steps", ordered::array({steps[i]})}});
    } else {
      for (size_t k = i; k < j; ++k) folded.push_back(steps[k]);
    }
    i = j;
  }
  return folded;
}

ordered Recorder::build_scenario() const {
  ordered s;
  s["format"] = 1;
  s["scenario"] = options_.name;
  s["description"] =
      !options_.description.empty() ? options_.description
      : options_.actor.empty()
          ? "recorded by vmci-scenario record from the traces of " +
                std::to_string(actors_.size()) + " endpoints"
          : "actor " + options_.actor +
                " alone, recorded by vmci-scenario record --actor from the " + "traces of " +
                std::to_string(actors_.size()) +
                " endpoints: play it against the others' program with run --connect SOCKET";
  const uint64_t recorded_ms = last_t_ > first_t_ ? (last_t_ - first_t_) / 1000000 : 0;
  s["timeout_ms"] = std::max<uint64_t>(30000, 4 * recorded_ms + 10000);
  if (limits_ && !options_.actor.empty()) {
    // Played against a running program (--connect), which has its own.
  } else if (limits_) {
    // Only the limits that differ from a default hostpeer's.
    const host::Limits defaults;
    const std::map<std::string, uint64_t> default_values = {
        {"max_qp_memory_per_context", defaults.max_qp_memory_per_context},
        {"max_queue_pairs_per_context", defaults.max_queue_pairs_per_context},
        {"max_doorbells_per_context", defaults.max_doorbells_per_context},
        {"max_host_datagram_handles", defaults.max_host_datagram_handles},
        {"max_pending_datagram_bytes", defaults.max_pending_datagram_bytes}};
    ordered limits = ordered::object();
    for (const auto& [name, value] : default_values) {
      if (limits_->contains(name) && (*limits_)[name].get<uint64_t>() != value) {
        limits[name] = (*limits_)[name].get<uint64_t>();
      }
    }
    if (!limits.empty()) s["hostpeer"] = {{"limits", limits}};
  }
  ordered actors = ordered::array();
  std::vector<const ActorInfo*> order;
  for (const ActorInfo& a : actors_) order.push_back(&a);
  std::stable_sort(order.begin(), order.end(),
                   [](const ActorInfo* x, const ActorInfo* y) { return x->open_t < y->open_t; });
  for (const ActorInfo* a : order) {
    if (!written(a->name) || a->continues) continue;
    ordered actor{{"name", a->name}, {"role", a->host ? "host" : "guest"}};
    if (!a->host) {
      // The recorded id, so that bytes that name it compare equal.
      if (pinned_.count(a->name)) actor["context_id"] = a->cid;
      if (a->priv_flags & VMCI_PRIVILEGE_FLAG_RESTRICTED) {
        actor["priv_flags"] = ordered::array({"RESTRICTED"});
      }
    }
    actors.push_back(actor);
  }
  s["actors"] = actors;
  std::vector<ordered> steps;
  for (const ordered& step : steps_) {
    if (written(step.value("actor", std::string()))) steps.push_back(step);
  }
  out_->steps = steps.size();
  s["steps"] = fold_repeats(steps);
  return s;
}

}  // namespace

bool record_scenario(const std::vector<TraceLine>& lines, const RecordOptions& options,
                     Recording* out, std::string* error) {
  Recorder recorder(lines, options, out);
  try {
    return recorder.run(error);
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("a trace line has a field of the wrong type: ") + e.what();
    return false;
  }
}

}  // namespace vmci::scenario
