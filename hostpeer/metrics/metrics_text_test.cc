// metrics_text_test.cc: a snapshot as Prometheus text: every figure of it
// under its name and labels, families whole with HELP and TYPE, counters
// ending in _total, label values escaped.
#include "metrics/metrics_text.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace vmci::host {
namespace {

Introspection sample() {
  Introspection s;
  s.version = "1.2.3";
  s.protocol = "2.2";
  s.started_unix_ms = 1700000000500;
  s.limits = {{"max_doorbells_per_context", 4096}};
  s.stats.guest_contexts = 1;
  s.stats.host_connections = 1;
  s.stats.queue_pairs = 1;
  s.stats.datagrams_routed = 12;
  s.stats.doorbells_rung = 10;
  s.connections_admitted = 5;
  s.refusals_by_status = {{"VMCI_ERROR_NO_ACCESS", 3}, {"VMCI_ERROR_INVALID_ARGS", 1}};
  ContextInfo guest;
  guest.connection = 3;
  guest.cid = 42;
  guest.datagrams_sent = 5;
  guest.bytes_sent = 500;
  guest.refused = 1;
  guest.datagrams_received = 6;
  guest.bytes_received = 600;
  guest.pending_datagrams = 2;
  guest.pending_bytes = 48;
  guest.events_received = {{"QP_PEER_ATTACH", 2}};
  s.contexts.push_back(guest);
  ContextInfo host;
  host.connection = 4;
  host.cid = VMCI_HOST_CONTEXT_ID;
  host.role = Role::kHost;
  s.contexts.push_back(host);
  PairInfo pair;
  pair.handle = {42, 1024};
  pair.state = "attached-mem";
  pair.creator_cid = 42;
  pair.attacher_cid = VMCI_HOST_CONTEXT_ID;
  pair.creator_to_attacher = {65536, 100};
  pair.attacher_to_creator = {4096, 0};
  s.pairs.push_back(pair);
  s.doorbells.push_back({{2, 5000}, 4, 2, 7, 0, 10, 1});
  s.handles.push_back({{2, 6000}, 4, 0, 0, 3});
  return s;
}

std::set<std::string> lines_of(const std::string& text) {
  std::set<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.insert(line);
  return lines;
}

TEST(MetricsText, EveryFigureOfTheSnapshotIsASample) {
  const std::set<std::string> lines = lines_of(metrics_text(sample(), std::nullopt));
  static const char* const kExpected[] = {
      R"(vmci_hostpeer_info{version="1.2.3",protocol="2.2"} 1)",
      R"(vmci_hostpeer_start_time_seconds 1700000000.5)",
      R"(vmci_hostpeer_limit{name="max_doorbells_per_context"} 4096)",
      R"(vmci_hostpeer_connections{role="guest"} 1)",
      R"(vmci_hostpeer_connections{role="host"} 1)",
      R"(vmci_hostpeer_connections_admitted_total 5)",
      R"(vmci_hostpeer_queue_pairs 1)",
      R"(vmci_hostpeer_datagrams_routed_total 12)",
      R"(vmci_hostpeer_doorbells_rung_total 10)",
      R"(vmci_hostpeer_refusals_total{status="VMCI_ERROR_NO_ACCESS"} 3)",
      R"(vmci_hostpeer_refusals_total{status="VMCI_ERROR_INVALID_ARGS"} 1)",
      R"(vmci_hostpeer_context_datagrams_sent_total{connection="3",cid="42",role="guest"} 5)",
      R"(vmci_hostpeer_context_bytes_sent_total{connection="3",cid="42",role="guest"} 500)",
      R"(vmci_hostpeer_context_refusals_total{connection="3",cid="42",role="guest"} 1)",
      R"(vmci_hostpeer_context_datagrams_received_total{connection="3",cid="42",role="guest"} 6)",
      R"(vmci_hostpeer_context_bytes_received_total{connection="3",cid="42",role="guest"} 600)",
      R"(vmci_hostpeer_context_pending_datagrams{connection="3",cid="42",role="guest"} 2)",
      R"(vmci_hostpeer_context_pending_bytes{connection="3",cid="42",role="guest"} 48)",
      R"(vmci_hostpeer_context_datagrams_sent_total{connection="4",cid="2",role="host"} 0)",
      R"(vmci_hostpeer_context_events_received_total{connection="3",cid="42",role="guest",event="QP_PEER_ATTACH"} 2)",
      R"(vmci_hostpeer_queue_pair_info{handle="42:1024",state="attached-mem",creator_cid="42",attacher_cid="2",memory="hostpeer"} 1)",
      R"(vmci_hostpeer_queue_size_bytes{handle="42:1024",direction="creator_to_attacher"} 65536)",
      R"(vmci_hostpeer_queue_size_bytes{handle="42:1024",direction="attacher_to_creator"} 4096)",
      R"(vmci_hostpeer_queue_used_bytes{handle="42:1024",direction="creator_to_attacher"} 100)",
      R"(vmci_hostpeer_queue_used_bytes{handle="42:1024",direction="attacher_to_creator"} 0)",
      R"(vmci_hostpeer_doorbell_rings_total{handle="2:5000"} 10)",
      R"(vmci_hostpeer_doorbell_fast_path_grants{handle="2:5000"} 1)",
      R"(vmci_hostpeer_datagram_handle_fast_path_grants{handle="2:6000"} 3)",
  };
  for (const char* line : kExpected) EXPECT_TRUE(lines.count(line)) << "missing: " << line;
  for (const std::string& line : lines) EXPECT_NE(line.rfind("process_", 0), 0u) << line;
}

TEST(MetricsText, ProcessFiguresUnderTheirUsualNames) {
  ProcessFigures p;
  p.cpu_seconds = 1.25;
  p.resident_bytes = 4096;
  p.virtual_bytes = 8192;
  p.open_fds = 9;
  p.max_fds = 1024;
  p.start_time_seconds = 1700000000.25;
  const std::set<std::string> lines = lines_of(metrics_text(Introspection{}, p));
  for (const char* line : {"process_cpu_seconds_total 1.25", "process_resident_memory_bytes 4096",
                           "process_virtual_memory_bytes 8192", "process_open_fds 9",
                           "process_max_fds 1024", "process_start_time_seconds 1700000000.25"}) {
    EXPECT_TRUE(lines.count(line)) << "missing: " << line;
  }
}

// The format's rules, checked line by line: a family's HELP, then TYPE,
// then its samples and nothing else until the next family; each family
// once; counters end in _total; every sample a name, labels and a number.
TEST(MetricsText, FamiliesAreWholeTypedAndNamedByTheRules) {
  for (const Introspection& snapshot : {Introspection{}, sample()}) {
    const std::string text = metrics_text(snapshot, ProcessFigures{});
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+)");
    static const std::regex kType(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
    static const std::regex kSample(
        R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? -?[0-9.e+]+)");
    std::set<std::string> seen;
    std::string family, help_of;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      SCOPED_TRACE(line);
      std::smatch m;
      if (std::regex_match(line, m, kHelp)) {
        EXPECT_TRUE(seen.insert(m[1]).second) << "family twice";
        help_of = m[1];
        family.clear();
      } else if (std::regex_match(line, m, kType)) {
        EXPECT_EQ(m[1], help_of) << "TYPE without its HELP just before";
        family = m[1];
        const bool total = family.size() > 6 && family.ends_with("_total");
        EXPECT_EQ(m[2] == "counter", total);
      } else {
        ASSERT_TRUE(std::regex_match(line, m, kSample)) << "not a sample";
        EXPECT_EQ(m[1], family) << "a sample outside its family";
      }
    }
    EXPECT_TRUE(seen.count("vmci_hostpeer_refusals_total"));  // families without samples too
  }
}

TEST(MetricsText, LabelValuesAreEscaped) {
  struct Case {
    const char* in;
    const char* out;
  };
  static constexpr Case kCases[] = {
      {"plain", "plain"},
      {R"(back\slash)", R"(back\\slash)"},
      {R"(say "hi")", R"(say \"hi\")"},
      {"two\nlines", R"(two\nlines)"},
      {"", ""},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(escape_label_value(c.in), c.out);
  }
  Introspection s;
  s.version = "1.0 \"odd\"\n";
  EXPECT_NE(metrics_text(s, std::nullopt).find(R"(vmci_hostpeer_info{version="1.0 \"odd\"\n",protocol=""} 1)"),
            std::string::npos);
}

}  // namespace
}  // namespace vmci::host
