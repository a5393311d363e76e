#include "vmci/introspection.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace vmci {
namespace {

using nlohmann::json;

std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

vmci_handle handle_from(const json& j) {
  const std::string text = j.get<std::string>();
  const auto colon = text.find(':');
  vmci_handle h = VMCI_INVALID_HANDLE;
  if (colon == std::string::npos ||
      std::from_chars(text.data(), text.data() + colon, h.context).ec != std::errc{} ||
      std::from_chars(text.data() + colon + 1, text.data() + text.size(), h.resource).ec !=
          std::errc{}) {
    throw std::invalid_argument("\"" + text + "\" is not a handle CONTEXT:RESOURCE");
  }
  return h;
}

std::string role_text(Role role) { return role == Role::kHost ? "host" : "guest"; }

Role role_from(const json& j) {
  const std::string text = j.get<std::string>();
  if (text == "host") return Role::kHost;
  if (text == "guest") return Role::kGuest;
  throw std::invalid_argument("\"" + text + "\" is not a role");
}

json stats_json(const Stats& s) {
  return {{"guest_contexts", s.guest_contexts},
          {"host_connections", s.host_connections},
          {"host_datagram_handles", s.host_datagram_handles},
          {"queue_pairs", s.queue_pairs},
          {"queue_pair_bytes", s.queue_pair_bytes},
          {"doorbells", s.doorbells},
          {"ring_channels", s.ring_channels},
          {"ring_grants", s.ring_grants},
          {"pending_datagrams", s.pending_datagrams},
          {"pending_datagram_bytes", s.pending_datagram_bytes},
          {"datagrams_routed", s.datagrams_routed},
          {"events_sent", s.events_sent},
          {"doorbells_rung", s.doorbells_rung}};
}

Stats stats_from(const json& j) {
  Stats s;
  s.guest_contexts = j.value("guest_contexts", uint64_t{0});
  s.host_connections = j.value("host_connections", uint64_t{0});
  s.host_datagram_handles = j.value("host_datagram_handles", uint64_t{0});
  s.queue_pairs = j.value("queue_pairs", uint64_t{0});
  s.queue_pair_bytes = j.value("queue_pair_bytes", uint64_t{0});
  s.doorbells = j.value("doorbells", uint64_t{0});
  s.ring_channels = j.value("ring_channels", uint64_t{0});
  s.ring_grants = j.value("ring_grants", uint64_t{0});
  s.pending_datagrams = j.value("pending_datagrams", uint64_t{0});
  s.pending_datagram_bytes = j.value("pending_datagram_bytes", uint64_t{0});
  s.datagrams_routed = j.value("datagrams_routed", uint64_t{0});
  s.events_sent = j.value("events_sent", uint64_t{0});
  s.doorbells_rung = j.value("doorbells_rung", uint64_t{0});
  return s;
}

json fill_json(const QueueFill& q) { return {{"size", q.size}, {"used", q.used}}; }
QueueFill fill_from(const json& j) { return {j.value("size", uint64_t{0}), j.value("used", uint64_t{0})}; }

}  // namespace

std::string to_json(const Introspection& snap) {
  json contexts = json::array();
  for (const ContextInfo& c : snap.contexts) {
    contexts.push_back({{"connection", c.connection},
                        {"cid", c.cid},
                        {"role", role_text(c.role)},
                        {"priv_flags", c.priv_flags},
                        {"pid", c.pid},
                        {"uid", c.uid},
                        {"since_unix_ms", c.since_unix_ms},
                        {"datagrams_sent", c.datagrams_sent},
                        {"bytes_sent", c.bytes_sent},
                        {"refused", c.refused},
                        {"datagrams_received", c.datagrams_received},
                        {"bytes_received", c.bytes_received},
                        {"pending_datagrams", c.pending_datagrams},
                        {"pending_bytes", c.pending_bytes},
                        {"deliveries_counted", c.deliveries_counted},
                        {"events_received", c.events_received}});
  }
  json pairs = json::array();
  for (const PairInfo& p : snap.pairs) {
    pairs.push_back({{"handle", handle_text(p.handle)},
                     {"flags", p.flags},
                     {"state", p.state},
                     {"creator_cid", p.creator_cid},
                     {"creator_connection", p.creator_connection},
                     {"attacher_cid", p.attacher_cid},
                     {"attacher_connection", p.attacher_connection},
                     {"guest_pages", p.guest_pages},
                     {"creator_to_attacher", fill_json(p.creator_to_attacher)},
                     {"attacher_to_creator", fill_json(p.attacher_to_creator)}});
  }
  json doorbells = json::array();
  for (const DoorbellInfo& d : snap.doorbells) {
    doorbells.push_back({{"handle", handle_text(d.handle)},
                         {"owner_connection", d.owner_connection},
                         {"owner_cid", d.owner_cid},
                         {"notify_index", d.notify_index},
                         {"priv_flags", d.priv_flags},
                         {"rings", d.rings},
                         {"fast_path_grants", d.fast_path_grants}});
  }
  json handles = json::array();
  for (const HandleInfo& h : snap.handles) {
    handles.push_back({{"handle", handle_text(h.handle)},
                       {"owner_connection", h.owner_connection},
                       {"flags", h.flags},
                       {"priv_flags", h.priv_flags},
                       {"fast_path_grants", h.fast_path_grants}});
  }
  const json out = {{"format", snap.format},
                    {"version", snap.version},
                    {"protocol", snap.protocol},
                    {"started_unix_ms", snap.started_unix_ms},
                    {"now_unix_ms", snap.now_unix_ms},
                    {"limits", snap.limits},
                    {"stats", stats_json(snap.stats)},
                    {"connections_admitted", snap.connections_admitted},
                    {"refusals_by_status", snap.refusals_by_status},
                    {"ring_channel_refusals", snap.ring_channel_refusals},
                    {"contexts", contexts},
                    {"pairs", pairs},
                    {"doorbells", doorbells},
                    {"handles", handles}};
  return out.dump();
}

bool parse_introspection(std::string_view text, Introspection* out, std::string* error) {
  try {
    const json j = json::parse(text);
    Introspection snap;
    snap.format = j.at("format").get<uint32_t>();
    if (snap.format != kIntrospectionFormat) {
      *error = "introspection format " + std::to_string(snap.format) + ", this reader knows " +
               std::to_string(kIntrospectionFormat);
      return false;
    }
    snap.version = j.value("version", std::string{});
    snap.protocol = j.value("protocol", std::string{});
    snap.started_unix_ms = j.value("started_unix_ms", int64_t{0});
    snap.now_unix_ms = j.value("now_unix_ms", int64_t{0});
    snap.limits = j.value("limits", std::map<std::string, uint64_t>{});
    snap.stats = stats_from(j.value("stats", json::object()));
    snap.connections_admitted = j.value("connections_admitted", uint64_t{0});
    snap.refusals_by_status =
        j.value("refusals_by_status", std::map<std::string, uint64_t>{});
    snap.ring_channel_refusals =
        j.value("ring_channel_refusals", std::map<std::string, uint64_t>{});
    for (const json& c : j.value("contexts", json::array())) {
      ContextInfo info;
      info.connection = c.at("connection").get<uint64_t>();
      info.cid = c.at("cid").get<vmci_id>();
      info.role = role_from(c.at("role"));
      info.priv_flags = c.value("priv_flags", uint32_t{0});
      info.pid = c.value("pid", int64_t{0});
      info.uid = c.value("uid", int64_t{-1});
      info.since_unix_ms = c.value("since_unix_ms", int64_t{0});
      info.datagrams_sent = c.value("datagrams_sent", uint64_t{0});
      info.bytes_sent = c.value("bytes_sent", uint64_t{0});
      info.refused = c.value("refused", uint64_t{0});
      info.datagrams_received = c.value("datagrams_received", uint64_t{0});
      info.bytes_received = c.value("bytes_received", uint64_t{0});
      info.pending_datagrams = c.value("pending_datagrams", uint64_t{0});
      info.pending_bytes = c.value("pending_bytes", uint64_t{0});
      info.deliveries_counted = c.value("deliveries_counted", false);
      info.events_received =
          c.value("events_received", std::map<std::string, uint64_t>{});
      snap.contexts.push_back(std::move(info));
    }
    for (const json& p : j.value("pairs", json::array())) {
      PairInfo info;
      info.handle = handle_from(p.at("handle"));
      info.flags = p.value("flags", uint32_t{0});
      info.state = p.value("state", std::string{});
      info.creator_cid = p.value("creator_cid", vmci_id{VMCI_INVALID_ID});
      info.creator_connection = p.value("creator_connection", uint64_t{0});
      info.attacher_cid = p.value("attacher_cid", vmci_id{VMCI_INVALID_ID});
      info.attacher_connection = p.value("attacher_connection", uint64_t{0});
      info.guest_pages = p.value("guest_pages", false);
      info.creator_to_attacher = fill_from(p.value("creator_to_attacher", json::object()));
      info.attacher_to_creator = fill_from(p.value("attacher_to_creator", json::object()));
      snap.pairs.push_back(std::move(info));
    }
    for (const json& d : j.value("doorbells", json::array())) {
      DoorbellInfo info;
      info.handle = handle_from(d.at("handle"));
      info.owner_connection = d.value("owner_connection", uint64_t{0});
      info.owner_cid = d.value("owner_cid", vmci_id{VMCI_INVALID_ID});
      info.notify_index = d.value("notify_index", uint64_t{0});
      info.priv_flags = d.value("priv_flags", uint32_t{0});
      info.rings = d.value("rings", uint64_t{0});
      info.fast_path_grants = d.value("fast_path_grants", uint64_t{0});
      snap.doorbells.push_back(info);
    }
    for (const json& h : j.value("handles", json::array())) {
      HandleInfo info;
      info.handle = handle_from(h.at("handle"));
      info.owner_connection = h.value("owner_connection", uint64_t{0});
      info.flags = h.value("flags", uint32_t{0});
      info.priv_flags = h.value("priv_flags", uint32_t{0});
      info.fast_path_grants = h.value("fast_path_grants", uint64_t{0});
      snap.handles.push_back(info);
    }
    *out = std::move(snap);
    return true;
  } catch (const std::exception& e) {
    *error = std::string("not an introspection snapshot: ") + e.what();
    return false;
  }
}

}  // namespace vmci
