#include "metrics/metrics_text.h"

#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace vmci::host {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

std::string number_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : "NaN";
}

// Writes one family: its HELP and TYPE lines, then its samples. Families
// are written whole, one after another, as the format requires.
class FamilyWriter {
 public:
  explicit FamilyWriter(std::string* out) : out_(out) {}

  void begin(std::string_view name, std::string_view type, std::string_view help) {
    name_ = name;
    *out_ += "# HELP ";
    *out_ += name;
    *out_ += ' ';
    for (char c : help) {  // HELP escapes backslash and newline only
      if (c == '\\') *out_ += "\\\\";
      else if (c == '\n') *out_ += "\\n";
      else *out_ += c;
    }
    *out_ += "\n# TYPE ";
    *out_ += name;
    *out_ += ' ';
    *out_ += type;
    *out_ += '\n';
  }

  void sample(const Labels& labels, uint64_t value) { sample(labels, std::to_string(value)); }
  void sample(const Labels& labels, double value) { sample(labels, number_text(value)); }

 private:
  void sample(const Labels& labels, const std::string& value) {
    *out_ += name_;
    if (!labels.empty()) {
      *out_ += '{';
      bool first = true;
      for (const auto& [label, text] : labels) {
        if (!first) *out_ += ',';
        first = false;
        *out_ += label;
        *out_ += "=\"";
        *out_ += escape_label_value(text);
        *out_ += '"';
      }
      *out_ += '}';
    }
    *out_ += ' ';
    *out_ += value;
    *out_ += '\n';
  }

  std::string* out_;
  std::string_view name_;
};

std::string role_text(Role role) { return role == Role::kHost ? "host" : "guest"; }

Labels context_labels(const ContextInfo& c) {
  return {{"connection", std::to_string(c.connection)},
          {"cid", std::to_string(c.cid)},
          {"role", role_text(c.role)}};
}

void write_hostpeer_wide(const Introspection& s, FamilyWriter& w) {
  w.begin("vmci_hostpeer_info", "gauge", "Always 1; the labels say hostpeer's version and control protocol.");
  w.sample({{"version", s.version}, {"protocol", s.protocol}}, uint64_t{1});
  w.begin("vmci_hostpeer_start_time_seconds", "gauge", "When this hostpeer started, in seconds since 1970.");
  w.sample({}, static_cast<double>(s.started_unix_ms) / 1000.0);
  w.begin("vmci_hostpeer_limit", "gauge", "Hostpeer's limits, by name (vmci-hostpeer --max-*).");
  for (const auto& [name, value] : s.limits) w.sample({{"name", name}}, value);

  w.begin("vmci_hostpeer_connections", "gauge", "Connections held now: guest contexts and host connections.");
  w.sample({{"role", "guest"}}, s.stats.guest_contexts);
  w.sample({{"role", "host"}}, s.stats.host_connections);
  w.begin("vmci_hostpeer_connections_admitted_total", "counter",
          "Connections admitted since hostpeer started, guests and hosts.");
  w.sample({}, s.connections_admitted);
  w.begin("vmci_hostpeer_host_datagram_handles", "gauge", "Datagram handles host connections hold.");
  w.sample({}, s.stats.host_datagram_handles);
  w.begin("vmci_hostpeer_queue_pairs", "gauge", "Queue pairs hostpeer's broker holds.");
  w.sample({}, s.stats.queue_pairs);
  w.begin("vmci_hostpeer_queue_pair_memory_bytes", "gauge", "Memory of those pairs, queue headers included.");
  w.sample({}, s.stats.queue_pair_bytes);
  w.begin("vmci_hostpeer_doorbells", "gauge", "Linked guest doorbells and host doorbells.");
  w.sample({}, s.stats.doorbells);
  w.begin("vmci_hostpeer_ring_channels", "gauge", "Doorbell and datagram fast-path channels open.");
  w.sample({}, s.stats.ring_channels);
  w.begin("vmci_hostpeer_ring_grants", "gauge", "Fast-path slots granted in those channels.");
  w.sample({}, s.stats.ring_grants);
  w.begin("vmci_hostpeer_pending_datagrams", "gauge", "Datagrams delivered whose callback has not run yet.");
  w.sample({}, s.stats.pending_datagrams);
  w.begin("vmci_hostpeer_pending_datagram_bytes", "gauge", "Bytes of those datagrams.");
  w.sample({}, s.stats.pending_datagram_bytes);
  w.begin("vmci_hostpeer_datagrams_routed_total", "counter",
          "Datagrams hostpeer routed to a receiver (not those of a fast-path lane).");
  w.sample({}, s.stats.datagrams_routed);
  w.begin("vmci_hostpeer_events_sent_total", "counter", "Event datagrams hostpeer delivered.");
  w.sample({}, s.stats.events_sent);
  w.begin("vmci_hostpeer_doorbells_rung_total", "counter",
          "Doorbell rings that went through hostpeer (not through a ring channel).");
  w.sample({}, s.stats.doorbells_rung);
  w.begin("vmci_hostpeer_refusals_total", "counter",
          "Datagrams and hypercalls hostpeer answered with an error, by status.");
  for (const auto& [status, count] : s.refusals_by_status) w.sample({{"status", status}}, count);
}

void write_contexts(const Introspection& s, FamilyWriter& w) {
  struct Figure {
    const char* name;
    const char* type;
    const char* help;
    uint64_t ContextInfo::*field;
  };
  static constexpr Figure kFigures[] = {
      {"vmci_hostpeer_context_datagrams_sent_total", "counter",
       "Datagrams hostpeer took from the connection, hypercalls included.", &ContextInfo::datagrams_sent},
      {"vmci_hostpeer_context_bytes_sent_total", "counter", "Bytes of those datagrams, headers included.",
       &ContextInfo::bytes_sent},
      {"vmci_hostpeer_context_refusals_total", "counter",
       "Of the datagrams the connection sent, those answered with an error.", &ContextInfo::refused},
      {"vmci_hostpeer_context_datagrams_received_total", "counter",
       "Datagrams hostpeer delivered to the connection, events included.", &ContextInfo::datagrams_received},
      {"vmci_hostpeer_context_bytes_received_total", "counter", "Bytes of those datagrams, headers included.",
       &ContextInfo::bytes_received},
      {"vmci_hostpeer_context_pending_datagrams", "gauge",
       "Datagrams delivered to the connection whose callback has not run yet.", &ContextInfo::pending_datagrams},
      {"vmci_hostpeer_context_pending_bytes", "gauge", "Bytes of those datagrams.", &ContextInfo::pending_bytes},
  };
  for (const Figure& f : kFigures) {
    w.begin(f.name, f.type, f.help);
    for (const ContextInfo& c : s.contexts) w.sample(context_labels(c), c.*f.field);
  }
  w.begin("vmci_hostpeer_context_events_received_total", "counter",
          "Event datagrams hostpeer delivered to the connection, by event.");
  for (const ContextInfo& c : s.contexts) {
    for (const auto& [event, count] : c.events_received) {
      Labels labels = context_labels(c);
      labels.emplace_back("event", event);
      w.sample(labels, count);
    }
  }
}

void write_pairs(const Introspection& s, FamilyWriter& w) {
  w.begin("vmci_hostpeer_queue_pair_info", "gauge",
          "Always 1 for each queue pair; the labels say its state, endpoints and whose memory it is.");
  for (const PairInfo& p : s.pairs) {
    w.sample({{"handle", handle_text(p.handle)},
              {"state", p.state},
              {"creator_cid", std::to_string(p.creator_cid)},
              {"attacher_cid", p.attacher_cid == VMCI_INVALID_ID ? "" : std::to_string(p.attacher_cid)},
              {"memory", p.guest_pages ? "guest pages" : "hostpeer"}},
             uint64_t{1});
  }
  auto each_queue = [&](auto figure) {
    for (const PairInfo& p : s.pairs) {
      const std::string handle = handle_text(p.handle);
      w.sample({{"handle", handle}, {"direction", "creator_to_attacher"}}, figure(p.creator_to_attacher));
      w.sample({{"handle", handle}, {"direction", "attacher_to_creator"}}, figure(p.attacher_to_creator));
    }
  };
  w.begin("vmci_hostpeer_queue_size_bytes", "gauge", "Size of each queue of a pair.");
  each_queue([](const QueueFill& q) { return q.size; });
  w.begin("vmci_hostpeer_queue_used_bytes", "gauge",
          "Bytes in each queue of a pair now, read from its queue headers.");
  each_queue([](const QueueFill& q) { return q.used; });
}

void write_doorbells_and_handles(const Introspection& s, FamilyWriter& w) {
  w.begin("vmci_hostpeer_doorbell_rings_total", "counter",
          "Rings of the doorbell that hostpeer passed on since it was linked (not those of a ring channel).");
  for (const DoorbellInfo& d : s.doorbells) w.sample({{"handle", handle_text(d.handle)}}, d.rings);
  w.begin("vmci_hostpeer_doorbell_fast_path_grants", "gauge",
          "Ring-channel slots granted now for ringing the doorbell without hostpeer.");
  for (const DoorbellInfo& d : s.doorbells) w.sample({{"handle", handle_text(d.handle)}}, d.fast_path_grants);
  w.begin("vmci_hostpeer_datagram_handle_fast_path_grants", "gauge",
          "Datagram lanes granted now for a host connection's datagram handle: guests' lanes "
          "to it, and its lanes to guests.");
  for (const HandleInfo& h : s.handles) w.sample({{"handle", handle_text(h.handle)}}, h.fast_path_grants);
}

void write_process(const ProcessFigures& p, FamilyWriter& w) {
  w.begin("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  w.sample({}, p.cpu_seconds);
  w.begin("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.sample({}, p.resident_bytes);
  w.begin("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  w.sample({}, p.virtual_bytes);
  w.begin("process_open_fds", "gauge", "Number of open file descriptors.");
  w.sample({}, p.open_fds);
  w.begin("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  w.sample({}, p.max_fds);
  w.begin("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  w.sample({}, p.start_time_seconds);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string metrics_text(const Introspection& snapshot, const std::optional<ProcessFigures>& process) {
  std::string out;
  out.reserve(4096 + 1024 * (snapshot.contexts.size() + snapshot.pairs.size()));
  FamilyWriter w(&out);
  write_hostpeer_wide(snapshot, w);
  write_contexts(snapshot, w);
  write_pairs(snapshot, w);
  write_doorbells_and_handles(snapshot, w);
  if (process) write_process(*process, w);
  return out;
}

}  // namespace vmci::host
