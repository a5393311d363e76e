#include "loader.h"

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "runner/errno_names.h"
#include "runner/suggest.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using json = nlohmann::json;

// The events the format names.
const std::set<std::string> kEventNames = {"CTX_ID_UPDATE",  "CTX_REMOVED",    "QP_RESUMED",
                                           "QP_PEER_ATTACH", "QP_PEER_DETACH", "MEM_ACCESS_ON",
                                           "MEM_ACCESS_OFF"};
const std::set<std::string> kLimitNames = {
    "max_qp_memory_per_context", "max_queue_pairs_per_context", "max_doorbells_per_context",
    "max_host_datagram_handles", "max_pending_datagram_bytes"};
const std::set<std::string> kContextWords = {"hypervisor", "well_known", "host", "invalid"};

// Thrown inside the loader only, caught by parse_scenario.
struct Invalid {
  std::string path;
  std::string message;
};

[[noreturn]] void fail(const std::string& path, const std::string& message) {
  throw Invalid{path, message};
}

bool is_variable(const json& v) { return v.is_string() && v.get<std::string>().starts_with("$"); }

class Checker {
 public:
  explicit Checker(Scenario& s) : s_(s) {}

  void document(const json& doc);

 private:
  void object_keys(const json& obj, const std::string& path, const std::set<std::string>& allowed);
  void actors(const json& list, const std::string& path);
  std::vector<Step> steps(const json& list, const std::string& path, bool in_repeat);
  Step step(const json& obj, const std::string& path, bool in_repeat);
  void argument(ValueKind kind, const json& value, const std::string& path);
  void context(const json& v, const std::string& path);
  void handle(const json& v, const std::string& path);
  void variable_use(const json& v, const std::string& path);
  void fields(const json& list, const std::string& path);
  void captures(const json& v, const std::string& path, bool in_repeat);
  void bind(const std::string& name, const std::string& path, bool in_repeat);
  void integer(const json& v, const std::string& path, int64_t min, int64_t max);
  bool has_actor(const std::string& name) const;

  Scenario& s_;
  // The variables bound by the steps before the one being checked, in the
  // file's order (parallel branches one after the other).
  std::set<std::string> bound_;
};

void Checker::object_keys(const json& obj, const std::string& path,
                          const std::set<std::string>& allowed) {
  if (!obj.is_object()) fail(path, "must be an object");
  for (const auto& [key, value] : obj.items()) {
    if (key.starts_with("x-")) continue;
    if (!allowed.count(key)) {
      fail(path + "." + key,
           "unknown key '" + key + "'" + did_you_mean(key, {allowed.begin(), allowed.end()}));
    }
  }
}

void Checker::integer(const json& v, const std::string& path, int64_t min, int64_t max) {
  if (!v.is_number_integer()) fail(path, "must be an integer");
  const auto value = v.get<int64_t>();
  if (value < min || value > max) {
    fail(path, "must be in " + std::to_string(min) + ".." + std::to_string(max));
  }
}

bool Checker::has_actor(const std::string& name) const {
  return std::any_of(s_.actors.begin(), s_.actors.end(),
                     [&](const ActorSpec& a) { return a.name == name; });
}

void Checker::document(const json& doc) {
  object_keys(doc, "$",
              {"format", "scenario", "description", "timeout_ms", "hostpeer", "played_against",
               "actors", "steps"});
  for (const char* key : {"format", "scenario", "actors", "steps"}) {
    if (!doc.contains(key)) fail("$", std::string("missing required key '") + key + "'");
  }
  if (doc["format"] != 1) fail("$.format", "must be 1");
  if (!doc["scenario"].is_string() ||
      !std::regex_match(doc["scenario"].get<std::string>(), std::regex("[a-z0-9][a-z0-9_-]*"))) {
    fail("$.scenario", "must be a name matching [a-z0-9][a-z0-9_-]*");
  }
  s_.name = doc["scenario"];
  if (doc.contains("description")) {
    if (!doc["description"].is_string()) fail("$.description", "must be a string");
    s_.description = doc["description"];
  }
  if (doc.contains("played_against")) {
    if (!doc["played_against"].is_string() ||
        !std::regex_match(doc["played_against"].get<std::string>(),
                          std::regex("[A-Za-z0-9][A-Za-z0-9._-]*"))) {
      fail("$.played_against", "must be a program's name matching [A-Za-z0-9][A-Za-z0-9._-]*");
    }
    if (doc.contains("hostpeer")) {
      fail("$.played_against",
           "a scenario played against a program cannot set up its own hostpeer");
    }
    s_.played_against = doc["played_against"];
  }
  if (doc.contains("timeout_ms")) {
    integer(doc["timeout_ms"], "$.timeout_ms", 1, INT64_MAX);
    s_.timeout_ms = doc["timeout_ms"];
  }
  if (doc.contains("hostpeer")) {
    s_.sets_hostpeer = true;
    object_keys(doc["hostpeer"], "$.hostpeer", {"limits"});
    if (doc["hostpeer"].contains("limits")) {
      const json& limits = doc["hostpeer"]["limits"];
      object_keys(limits, "$.hostpeer.limits", kLimitNames);
      for (const auto& [key, value] : limits.items()) {
        if (key.starts_with("x-")) continue;
        std::string error;
        uint64_t n;
        if (!parse_size(value, &n, &error)) fail("$.hostpeer.limits." + key, error);
        s_.limits[key] = n;
      }
    }
  }
  actors(doc["actors"], "$.actors");
  s_.steps = steps(doc["steps"], "$.steps", false);
}

void Checker::actors(const json& list, const std::string& path) {
  if (!list.is_array() || list.empty()) fail(path, "must be a non-empty array");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& a = list[i];
    object_keys(a, p, {"name", "role", "context_id", "priv_flags", "isolation"});
    if (!a.contains("name") || !a["name"].is_string()) fail(p, "missing 'name'");
    ActorSpec actor;
    actor.name = a["name"];
    if (!std::regex_match(actor.name, std::regex("[a-z][a-z0-9_-]*"))) {
      fail(p + ".name", "must match [a-z][a-z0-9_-]*");
    }
    if (actor.name == "hypervisor" || actor.name == "well_known" || actor.name == "invalid") {
      fail(p + ".name", "'" + actor.name + "' is reserved");
    }
    if (has_actor(actor.name)) fail(p + ".name", "actor '" + actor.name + "' is declared twice");
    if (!a.contains("role") || (a["role"] != "host" && a["role"] != "guest")) {
      fail(p + ".role", "must be \"host\" or \"guest\"");
    }
    actor.host = a["role"] == "host";
    if (actor.name == "host" && !actor.host) fail(p + ".name", "'host' is only for a host actor");
    if (a.contains("context_id")) {
      if (actor.host) fail(p + ".context_id", "only guests ask for a context id");
      integer(a["context_id"], p + ".context_id", 3, 0xFFFFFFFE);
      actor.context_id = a["context_id"].get<vmci_id>();
    }
    if (a.contains("priv_flags")) {
      if (actor.host) fail(p + ".priv_flags", "only guests have context privileges");
      std::string error;
      if (!parse_flags(a["priv_flags"], ValueKind::kPrivFlags, &actor.priv_flags, &error)) {
        fail(p + ".priv_flags", error);
      }
      if (actor.priv_flags & ~VMCI_PRIVILEGE_FLAG_RESTRICTED) {
        fail(p + ".priv_flags", "a context may only be [\"RESTRICTED\"]");
      }
    }
    if (a.contains("isolation")) {
      if (a["isolation"] != "thread" && a["isolation"] != "process") {
        fail(p + ".isolation", "must be \"thread\" or \"process\"");
      }
      actor.process = a["isolation"] == "process";
    }
    s_.actors.push_back(actor);
  }
}

std::vector<Step> Checker::steps(const json& list, const std::string& path, bool in_repeat) {
  if (!list.is_array()) fail(path, "must be an array of steps");
  std::vector<Step> out;
  for (size_t i = 0; i < list.size(); ++i) {
    out.push_back(step(list[i], path + "[" + std::to_string(i) + "]", in_repeat));
  }
  return out;
}

Step Checker::step(const json& obj, const std::string& path, bool in_repeat) {
  if (!obj.is_object()) fail(path, "a step must be an object");
  if (!obj.contains("op") || !obj["op"].is_string()) fail(path, "missing 'op'");
  Step st;
  st.op = obj["op"];
  st.path = path;
  st.args = obj;
  const OpSpec* spec = find_op(st.op);
  if (spec == nullptr) {
    std::vector<std::string> names;
    for (const OpSpec& op : op_table()) names.emplace_back(op.name);
    fail(path + ".op", "unknown op '" + st.op + "'" + did_you_mean(st.op, names) +
                           "; `vmci-scenario ops` lists them");
  }

  std::set<std::string> allowed = {"op", "note"};
  for (const KeySpec& k : spec->keys) allowed.insert(std::string(k.name));
  if (spec->actor == ActorRule::kRequired) allowed.insert("actor");
  if (spec->kind == OpKind::kApi) allowed.insert({"expect", "as", "timeout_ms"});
  if (spec->kind == OpKind::kWait || spec->kind == OpKind::kStream) allowed.insert("timeout_ms");
  if (spec->kind == OpKind::kStream) allowed.insert("expect");  // how the stream ends
  if (obj.contains("actor") && spec->actor == ActorRule::kForbidden) {
    fail(path + ".actor", "op '" + st.op + "' takes no actor");
  }
  object_keys(obj, path, allowed);
  for (const KeySpec& k : spec->keys) {
    const std::string name(k.name);
    if (k.need == KeyNeed::kRequired && !obj.contains(name)) {
      fail(path, "op '" + st.op + "' needs '" + name + "'");
    }
  }
  if (spec->actor == ActorRule::kRequired) {
    if (!obj.contains("actor") || !obj["actor"].is_string()) {
      fail(path, "op '" + st.op + "' needs 'actor'");
    }
    st.actor = obj["actor"];
    if (!has_actor(st.actor)) fail(path + ".actor", "no actor named '" + st.actor + "'");
  }
  if (obj.contains("note")) {
    if (!obj["note"].is_string()) fail(path + ".note", "must be a string");
    st.note = obj["note"];
  }
  if (obj.contains("timeout_ms")) {
    integer(obj["timeout_ms"], path + ".timeout_ms", 0, INT64_MAX);
    st.timeout_ms = obj["timeout_ms"].get<int64_t>();
  }
  st.expect.domain = spec->results;
  if (obj.contains("expect")) {
    const json& e = obj["expect"];
    const std::string p = path + ".expect";
    if (e.is_string() && spec->results == ResultDomain::kErrno) {
      const std::optional<int> code = errno_from_name(e.get<std::string>());
      if (!code) fail(p, "unknown errno name '" + e.get<std::string>() + "' (ECONNRESET, EPIPE, ...)");
      st.expect = {Expectation::Kind::kExact, -*code, 0, 0, spec->results};
    } else if (e.is_string()) {
      auto code = proto::status_from_name(e.get<std::string>());
      if (!code) fail(p, "unknown status name '" + e.get<std::string>() + "'");
      st.expect = {Expectation::Kind::kExact, *code, 0, 0, spec->results};
    } else if (e.is_number_integer()) {
      st.expect = {Expectation::Kind::kExact, e.get<int64_t>(), 0, 0, spec->results};
    } else if (e.is_object()) {
      object_keys(e, p, {"min", "max"});
      if (!e.contains("min") || !e.contains("max") || !e["min"].is_number_integer() ||
          !e["max"].is_number_integer()) {
        fail(p, "a range needs integer 'min' and 'max'");
      }
      st.expect = {Expectation::Kind::kRange, 0, e["min"], e["max"], spec->results};
      if (st.expect.min > st.expect.max) fail(p, "min is greater than max");
    } else {
      fail(p, "must be a status name, an integer or {\"min\", \"max\"}");
    }
  }
  if (obj.contains("as")) {
    const std::string p = path + ".as";
    if (!obj["as"].is_string() ||
        !std::regex_match(obj["as"].get<std::string>(), std::regex("\\$[A-Za-z_][A-Za-z0-9_]*"))) {
      fail(p, "must be a variable name like \"$name\"");
    }
    st.as = obj["as"];
  }
  for (const auto& [key, value] : obj.items()) {
    if (key == "op" || key == "note" || key == "actor" || key == "timeout_ms" || key == "expect" ||
        key == "as" || key.starts_with("x-")) {
      continue;
    }
    const KeySpec* declared = spec->key(key);
    if (declared == nullptr) fail(path + "." + key, "unknown key '" + key + "'");
    if (declared->kind == ValueKind::kSteps) {
      st.steps = steps(value, path + "." + key, true);
    } else if (declared->kind == ValueKind::kBranches) {
      if (!value.is_array() || value.empty())
        fail(path + "." + key, "must be an array of step arrays");
      for (size_t b = 0; b < value.size(); ++b) {
        st.branches.push_back(
            steps(value[b], path + "." + key + "[" + std::to_string(b) + "]", in_repeat));
      }
    } else if (declared->kind == ValueKind::kCount) {
      integer(value, path + "." + key, 0, 1000000000);
      st.count = value;
    } else if (declared->kind == ValueKind::kCapture) {
      continue;  // binds: after every use of the step is checked, below
    } else {
      argument(declared->kind, value, path + "." + key);
    }
  }
  // What the step binds is bound for the steps after it, not for its own
  // keys.
  if (!st.as.empty()) bind(st.as, path + ".as", in_repeat);
  if (const KeySpec* capture = spec->key("capture");
      capture != nullptr && capture->kind == ValueKind::kCapture && obj.contains("capture")) {
    captures(obj["capture"], path + ".capture", in_repeat);
  }
  if (spec->control == ControlOp::kRestartHostpeer) s_.restarts_hostpeer = true;
  return st;
}

void Checker::variable_use(const json& v, const std::string& path) {
  std::string name = v.get<std::string>();
  if (!std::regex_match(name, std::regex("\\$[A-Za-z_][A-Za-z0-9_]*(\\.handle)?"))) {
    fail(path, "'" + name + "' is not a variable name");
  }
  if (name.ends_with(".handle")) name.resize(name.size() - std::string(".handle").size());
  if (!bound_.count(name)) {
    fail(path, "variable " + name + " is used before any step binds it (with \"as\" or " +
                   "\"capture\")" + did_you_mean(name, {bound_.begin(), bound_.end()}));
  }
}

void Checker::bind(const std::string& name, const std::string& path, bool in_repeat) {
  if (!std::regex_match(name, std::regex("\\$[A-Za-z_][A-Za-z0-9_]*"))) {
    fail(path, "must be a variable name like \"$name\"");
  }
  if (in_repeat) fail(path, "variables may not be bound inside repeat");
  if (!bound_.insert(name).second) fail(path, "variable " + name + " is bound twice");
}

// {"$name": {"offset": SIZE, "type": "u8"|"u16"|"u32"|"u64"|"handle"}, ...}
void Checker::captures(const json& v, const std::string& path, bool in_repeat) {
  if (!v.is_object() || v.empty()) {
    fail(path, "capture is an object of variables: {\"$n\": {\"offset\": 0, \"type\": \"u32\"}}");
  }
  for (const auto& [name, field] : v.items()) {
    const std::string p = path + "." + name;
    object_keys(field, p, {"offset", "type"});
    if (!field.contains("offset") || !field.contains("type")) {
      fail(p, "a capture needs 'offset' and 'type'");
    }
    std::string error;
    uint64_t offset;
    if (!parse_size(field["offset"], &offset, &error)) fail(p + ".offset", error);
    if (!field["type"].is_string() || !field_width(field["type"].get<std::string>())) {
      fail(p + ".type", "must be \"u8\", \"u16\", \"u32\", \"u64\" or \"handle\"");
    }
    bind(name, p, in_repeat);
  }
}

// [{"u32": 7}, {"handle": "$h"}, {"text": "hi"}, ...]
void Checker::fields(const json& list, const std::string& path) {
  if (!list.is_array() || list.empty()) {
    fail(path, "fields are a non-empty array like [{\"u32\": 7}, {\"handle\": \"$h\"}]");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& field = list[i];
    if (!field.is_object() || field.size() != 1) {
      fail(p, "a field is an object of one key: u8, u16, u32, u64, handle, or a data form");
    }
    const std::string kind = field.begin().key();
    const json& value = field.begin().value();
    const std::string vp = p + "." + kind;
    if (kind == "handle") {
      handle(value, vp);
    } else if (const std::optional<size_t> width = field_width(kind)) {
      if (is_variable(value)) {
        variable_use(value, vp);
      } else if (!value.is_number_unsigned() &&
                 !(value.is_number_integer() && value.get<int64_t>() >= 0)) {
        fail(vp, "must be an integer >= 0 or a variable holding a number");
      } else if (*width < 8 && value.get<uint64_t>() >> (8 * *width) != 0) {
        fail(vp, "does not fit in " + std::to_string(8 * *width) + " bits");
      }
    } else if (kind == "fields") {
      fail(vp, "fields do not nest");
    } else {
      std::string error;
      Data data;
      if (!parse_data(field, &data, &error)) fail(p, error);
    }
  }
}

void Checker::context(const json& v, const std::string& path) {
  if (v.is_number_integer()) return integer(v, path, 0, 0xFFFFFFFF);
  if (is_variable(v)) return variable_use(v, path);
  if (v.is_string()) {
    const std::string name = v;
    if (kContextWords.count(name) || has_actor(name)) return;
    fail(path, "'" + name + "' is neither an actor nor a context name");
  }
  fail(path, "a context is an actor name, a number, a context name or a variable");
}

void Checker::handle(const json& v, const std::string& path) {
  if (is_variable(v)) return variable_use(v, path);
  if (!v.is_object()) fail(path, "a handle is {\"context\", \"resource\"} or a variable");
  object_keys(v, path, {"context", "resource"});
  if (!v.contains("context") || !v.contains("resource")) {
    fail(path, "a handle needs 'context' and 'resource'");
  }
  context(v["context"], path + ".context");
  integer(v["resource"], path + ".resource", 0, 0xFFFFFFFF);
}

// A key's value, checked against the kind its op declares (op_table.h).
// kSteps, kBranches and kCount are step()'s: they make the step.
void Checker::argument(ValueKind kind, const json& value, const std::string& path) {
  std::string error;
  switch (kind) {
    case ValueKind::kHandle:
      return handle(value, path);
    case ValueKind::kResource:
      if (value == "any") return;
      return integer(value, path, 0, 0xFFFFFFFF);
    case ValueKind::kDatagramFlags:
    case ValueKind::kDoorbellFlags:
    case ValueKind::kQueuePairFlags:
    case ValueKind::kPrivFlags: {
      uint32_t flags;
      if (!parse_flags(value, kind, &flags, &error)) fail(path, error);
      return;
    }
    case ValueKind::kData: {
      if (value.is_object() && value.size() == 1 && value.contains("fields")) {
        return fields(value["fields"], path + ".fields");
      }
      Data data;
      if (!parse_data(value, &data, &error)) fail(path, error);
      return;
    }
    case ValueKind::kEventMatch:
      object_keys(value, path, {"context_id", "handle", "peer_id"});
      if (value.contains("context_id")) context(value["context_id"], path + ".context_id");
      if (value.contains("peer_id")) context(value["peer_id"], path + ".peer_id");
      if (value.contains("handle")) handle(value["handle"], path + ".handle");
      return;
    case ValueKind::kEvent:
      if (!value.is_string() || !kEventNames.count(value.get<std::string>())) {
        fail(path,
             "unknown event; one of CTX_ID_UPDATE, CTX_REMOVED, QP_RESUMED, "
             "QP_PEER_ATTACH, QP_PEER_DETACH, MEM_ACCESS_ON, MEM_ACCESS_OFF");
      }
      return;
    case ValueKind::kSubscription:
      if (is_variable(value)) return variable_use(value, path);
      return integer(value, path, 0, 0xFFFFFFFF);
    case ValueKind::kQueuePair:
      if (!is_variable(value)) fail(path, "a queue pair is a variable bound by qpair_alloc");
      return variable_use(value, path);
    case ValueKind::kSize:
    case ValueKind::kChunk: {
      uint64_t n;
      if (!parse_size(value, &n, &error)) fail(path, error);
      if (kind == ValueKind::kChunk && n == 0) fail(path, "a chunk must be at least one byte");
      return;
    }
    case ValueKind::kContext:
      return context(value, path);
    case ValueKind::kIndexes:
      object_keys(value, path, {"tail", "head"});
      for (const char* k : {"tail", "head"}) {
        if (value.contains(k)) integer(value[k], path + "." + k, 0, INT64_MAX);
      }
      return;
    case ValueKind::kMilliseconds:
      return integer(value, path, 0, INT64_MAX);
    case ValueKind::kCount:
    case ValueKind::kSteps:
    case ValueKind::kBranches:
    case ValueKind::kCapture:
      return;
    case ValueKind::kBoolean:
      if (!value.is_boolean()) fail(path, "must be true or false");
      return;
    case ValueKind::kPort:
      if (value == "any") return;
      if (is_variable(value)) return variable_use(value, path);
      return integer(value, path, 0, 0xFFFFFFFE);
    case ValueKind::kBacklog:
      return integer(value, path, 0, 65535);
    case ValueKind::kShutdownHow:
      if (value != "RD" && value != "WR" && value != "RDWR") {
        fail(path, "must be \"RD\", \"WR\" or \"RDWR\"");
      }
      return;
    case ValueKind::kVsockAddress:
      object_keys(value, path, {"cid", "port"});
      if (value.contains("cid")) context(value["cid"], path + ".cid");
      if (value.contains("port")) argument(ValueKind::kPort, value["port"], path + ".port");
      return;
    case ValueKind::kVsockListener:
    case ValueKind::kVsockStream:
    case ValueKind::kVsockDatagram:
    case ValueKind::kVsockSocket:
      if (!is_variable(value)) fail(path, "a socket is a variable bound by the op that made it");
      return variable_use(value, path);
  }
}

}  // namespace

std::string describe_result(ResultDomain domain, int64_t result) {
  if (domain == ResultDomain::kVmciStatus) return proto::describe_result(result);
  if (result >= 0) return std::to_string(result);
  return errno_name(static_cast<int>(-result)) + " (" + std::to_string(result) + ")";
}

bool Expectation::matches(int64_t result) const {
  switch (kind) {
    case Kind::kNonNegative:
      return result >= 0;
    case Kind::kExact:
      return result == value;
    case Kind::kRange:
      return result >= min && result <= max;
  }
  return false;
}

std::string Expectation::describe() const {
  switch (kind) {
    case Kind::kNonNegative:
      return "a non-negative result";
    case Kind::kExact:
      return describe_result(domain, value);
    case Kind::kRange:
      return std::to_string(min) + ".." + std::to_string(max);
  }
  return {};
}

bool parse_size(const json& value, uint64_t* out, std::string* error) {
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0)) {
    *out = value.get<uint64_t>();
    return true;
  }
  if (value.is_string()) {
    std::smatch m;
    const std::string text = value;
    if (std::regex_match(text, m, std::regex("([0-9]+)(KiB|MiB|GiB)?"))) {
      const unsigned shift = m[2] == "KiB" ? 10 : m[2] == "MiB" ? 20 : m[2] == "GiB" ? 30 : 0;
      uint64_t n = 0;
      for (const char c : m[1].str()) {
        const uint64_t digit = static_cast<uint64_t>(c - '0');
        if (n > (UINT64_MAX - digit) / 10) {
          *error = "size \"" + text + "\" is too large";
          return false;
        }
        n = n * 10 + digit;
      }
      if (n > (UINT64_MAX >> shift)) {
        *error = "size \"" + text + "\" is too large";
        return false;
      }
      *out = n << shift;
      return true;
    }
  }
  *error = "a size is a non-negative number or a string like \"64KiB\"";
  return false;
}

bool parse_flags(const json& value, ValueKind kind, uint32_t* out, std::string* error) {
  const auto table = kind == ValueKind::kPrivFlags        ? proto::privilege_flags()
                     : kind == ValueKind::kQueuePairFlags ? proto::queue_pair_flags()
                     : kind == ValueKind::kDoorbellFlags  ? proto::doorbell_flags()
                                                          : proto::datagram_flags();
  if (!value.is_array()) {
    *error = "flags are an array of names, e.g. [\"" + std::string(table[0].name) + "\"]";
    return false;
  }
  *out = 0;
  for (const auto& name : value) {
    auto bit =
        name.is_string() ? proto::flag_from_name(table, name.get<std::string>()) : std::nullopt;
    if (!bit) {
      std::string known;
      for (const auto& entry : table)
        known += (known.empty() ? "" : ", ") + std::string(entry.name);
      *error = "unknown flag " + name.dump() + " (known: " + known + ")";
      return false;
    }
    *out |= *bit;
  }
  return true;
}

bool parse_data(const json& value, Data* out, std::string* error) {
  if (!value.is_object() || value.size() != 1) {
    *error =
        "data is one of {\"text\"}, {\"hex\"}, {\"base64\"}, {\"zeros\"}, {\"pattern\"}, "
        "{\"fields\"}";
    return false;
  }
  const auto entry = value.begin();
  const std::string kind = entry.key();
  const json& v = entry.value();
  *out = Data{};
  if (kind == "text" && v.is_string()) {
    const std::string text = v;
    out->bytes.assign(text.begin(), text.end());
    return true;
  }
  if (kind == "hex" && v.is_string()) return decode_hex(v, &out->bytes, error);
  if (kind == "fields") {
    // Their variables are resolved by the run (data_of, ops/op_context.h).
    *error = "fields are built when the step runs";
    return false;
  }
  if (kind == "base64" && v.is_string()) return decode_base64(v, &out->bytes, error);
  if (kind == "zeros") {
    out->kind = Data::Kind::kZeros;
    return parse_size(v, &out->length, error);
  }
  if (kind == "pattern" && v.is_object()) {
    for (const auto& [k, _] : v.items()) {
      if (k != "seed" && k != "length" && k != "offset") {
        *error = "unknown pattern key '" + k + "'";
        return false;
      }
    }
    if (!v.contains("seed") || !v.contains("length")) {
      *error = "a pattern needs a 'seed' and a 'length'";
      return false;
    }
    if (!v["seed"].is_number_unsigned()) {
      *error = "a pattern's seed is an integer 0..2^64-1";
      return false;
    }
    out->kind = Data::Kind::kPattern;
    out->seed = v["seed"].get<uint64_t>();
    if (!parse_size(v["length"], &out->length, error)) return false;
    if (v.contains("offset") && !parse_size(v["offset"], &out->offset, error)) return false;
    return true;
  }
  *error =
      "data is one of {\"text\"}, {\"hex\"}, {\"base64\"}, {\"zeros\"}, {\"pattern\"}, "
      "{\"fields\"}";
  return false;
}

std::optional<Scenario> parse_scenario(const std::string& file, const std::string& text,
                                       LoadError* error) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
    *error = {file, "$", std::string("not valid JSON: ") + e.what()};
    return std::nullopt;
  }
  Scenario s;
  s.file = file;
  try {
    Checker(s).document(doc);
  } catch (const Invalid& invalid) {
    *error = {file, invalid.path, invalid.message};
    return std::nullopt;
  } catch (const json::exception& e) {
    *error = {file, "$", e.what()};
    return std::nullopt;
  }
  return s;
}

std::optional<Scenario> load_scenario(const std::string& file, LoadError* error) {
  std::ifstream in(file);
  if (!in) {
    *error = {file, "$", "cannot read the file"};
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_scenario(file, text.str(), error);
}

}  // namespace vmci::scenario
