#include "tables.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace vmci::ctl {
namespace {

// Rows of cells under a header, each column as wide as its widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string text() const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
      out += line + "\n";
    }
    if (rows_.size() == 1) out += "(none)\n";
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

std::string cid_text(vmci_id cid) { return cid == VMCI_INVALID_ID ? "-" : std::to_string(cid); }

std::string hex(uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", value);
  return buf;
}

std::string fill_text(const QueueFill& q) {
  return bytes_text(q.used) + "/" + bytes_text(q.size);
}

std::string status(const Introspection& s) {
  const Stats& t = s.stats;
  std::string out = "hostpeer " + s.version + ", protocol " + s.protocol + ", up " +
                    age_text(s.now_unix_ms - s.started_unix_ms) + "\n";
  Table counts({"held", "", "counted since start", ""});
  counts.add({"guest contexts", std::to_string(t.guest_contexts), "datagrams routed",
              std::to_string(t.datagrams_routed)});
  counts.add({"host connections", std::to_string(t.host_connections), "events sent",
              std::to_string(t.events_sent)});
  counts.add({"host datagram handles", std::to_string(t.host_datagram_handles), "doorbells rung",
              std::to_string(t.doorbells_rung)});
  counts.add({"queue pairs", std::to_string(t.queue_pairs) + " (" + bytes_text(t.queue_pair_bytes) + ")",
              "", ""});
  counts.add({"doorbells", std::to_string(t.doorbells), "", ""});
  counts.add({"ring channels", std::to_string(t.ring_channels) + " (" +
                                   std::to_string(t.ring_grants) + " slots)",
              "", ""});
  counts.add({"pending datagrams", std::to_string(t.pending_datagrams) + " (" +
                                       bytes_text(t.pending_datagram_bytes) + ")",
              "", ""});
  out += counts.text();
  out += "limits:";
  for (const auto& [name, value] : s.limits) out += " " + name + "=" + std::to_string(value);
  return out + "\n";
}

std::string contexts(const Introspection& s) {
  Table t({"CONN", "CID", "ROLE", "PID", "UID", "AGE", "SENT", "SENT-BYTES", "REFUSED",
           "RECEIVED", "RECV-BYTES", "PENDING"});
  for (const ContextInfo& c : s.contexts) {
    t.add({std::to_string(c.connection), cid_text(c.cid), c.role == Role::kHost ? "host" : "guest",
           c.pid ? std::to_string(c.pid) : "-", c.uid >= 0 ? std::to_string(c.uid) : "-",
           age_text(s.now_unix_ms - c.since_unix_ms), std::to_string(c.datagrams_sent),
           bytes_text(c.bytes_sent), std::to_string(c.refused), std::to_string(c.datagrams_received),
           bytes_text(c.bytes_received),
           std::to_string(c.pending_datagrams) + " (" + bytes_text(c.pending_bytes) + ")"});
  }
  return t.text();
}

std::string pairs(const Introspection& s) {
  Table t({"HANDLE", "STATE", "CREATOR", "ATTACHER", "MEMORY", "CREATOR->ATTACHER",
           "ATTACHER->CREATOR", "FLAGS"});
  for (const PairInfo& p : s.pairs) {
    t.add({handle_text(p.handle), p.state,
           cid_text(p.creator_cid) + " (conn " + std::to_string(p.creator_connection) + ")",
           p.attacher_connection ? cid_text(p.attacher_cid) + " (conn " +
                                       std::to_string(p.attacher_connection) + ")"
                                 : "-",
           p.guest_pages ? "guest pages" : "hostpeer", fill_text(p.creator_to_attacher),
           fill_text(p.attacher_to_creator), hex(p.flags)});
  }
  return t.text();
}

std::string doorbells(const Introspection& s) {
  Table t({"HANDLE", "OWNER", "CONN", "INDEX", "PRIV", "RINGS", "FAST-PATH"});
  for (const DoorbellInfo& d : s.doorbells) {
    t.add({handle_text(d.handle), cid_text(d.owner_cid), std::to_string(d.owner_connection),
           std::to_string(d.notify_index), hex(d.priv_flags), std::to_string(d.rings),
           std::to_string(d.fast_path_grants)});
  }
  return t.text();
}

std::string handles(const Introspection& s) {
  Table t({"HANDLE", "CONN", "FLAGS", "PRIV", "FAST-PATH"});
  for (const HandleInfo& h : s.handles) {
    t.add({handle_text(h.handle), std::to_string(h.owner_connection), hex(h.flags),
           hex(h.priv_flags), std::to_string(h.fast_path_grants)});
  }
  return t.text();
}

std::string subscriptions(const Introspection& s) {
  Table t({"CONN", "CID", "EVENT", "DELIVERED"});
  for (const ContextInfo& c : s.contexts) {
    for (const auto& [event, count] : c.events_received) {
      t.add({std::to_string(c.connection), cid_text(c.cid), event, std::to_string(count)});
    }
  }
  return "Events hostpeer delivered, by connection (subscriptions themselves live in each\n"
         "endpoint, as a VMCI guest's live in its driver):\n" +
         t.text();
}

}  // namespace

std::optional<View> view_from_name(std::string_view name) {
  for (View v : {View::kStatus, View::kContexts, View::kPairs, View::kDoorbells, View::kHandles,
                 View::kSubscriptions}) {
    if (view_name(v) == name) return v;
  }
  return std::nullopt;
}

std::string_view view_name(View view) {
  switch (view) {
    case View::kStatus:
      return "status";
    case View::kContexts:
      return "contexts";
    case View::kPairs:
      return "pairs";
    case View::kDoorbells:
      return "doorbells";
    case View::kHandles:
      return "handles";
    case View::kSubscriptions:
      return "subscriptions";
  }
  return "status";
}

std::string render(const Introspection& snapshot, View view) {
  switch (view) {
    case View::kStatus:
      return status(snapshot);
    case View::kContexts:
      return contexts(snapshot);
    case View::kPairs:
      return pairs(snapshot);
    case View::kDoorbells:
      return doorbells(snapshot);
    case View::kHandles:
      return handles(snapshot);
    case View::kSubscriptions:
      return subscriptions(snapshot);
  }
  return {};
}

std::string bytes_text(uint64_t bytes) {
  static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", value, units[unit]);
  return buf;
}

std::string age_text(int64_t milliseconds) {
  const int64_t s = std::max<int64_t>(milliseconds, 0) / 1000;
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  }
  return buf;
}

}  // namespace vmci::ctl
