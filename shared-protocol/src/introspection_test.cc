// introspection_test.cc: the snapshot's JSON form reads back as written,
// and a reader refuses what is not a snapshot of its format.
#include "vmci/introspection.h"

#include <gtest/gtest.h>

namespace vmci {
namespace {

Introspection sample() {
  Introspection s;
  s.version = "1.2.3";
  s.protocol = "2.2";
  s.started_unix_ms = 1000;
  s.now_unix_ms = 2000;
  s.limits = {{"max_queue_pair_memory_per_context", 1u << 30}};
  s.stats.guest_contexts = 1;
  s.stats.queue_pairs = 1;
  s.connections_admitted = 7;
  s.refusals_by_status = {{"VMCI_ERROR_NO_ACCESS", 3}, {"VMCI_ERROR_INVALID_ARGS", 1}};
  ContextInfo guest;
  guest.connection = 3;
  guest.cid = 42;
  guest.pid = 777;
  guest.uid = 1000;
  guest.datagrams_sent = 5;
  guest.bytes_sent = 500;
  guest.refused = 1;
  guest.events_received = {{"VMCI_EVENT_QP_PEER_ATTACH", 2}};
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
  pair.creator_connection = 3;
  pair.attacher_cid = VMCI_HOST_CONTEXT_ID;
  pair.attacher_connection = 4;
  pair.creator_to_attacher = {65536, 100};
  pair.attacher_to_creator = {4096, 0};
  s.pairs.push_back(pair);
  s.doorbells.push_back({{2, 5000}, 4, 2, 7, 0, 10, 1});
  s.handles.push_back({{2, 6000}, 4, 0, 0, 1});
  return s;
}

TEST(Introspection, TheJsonReadsBackAsWritten) {
  const Introspection in = sample();
  Introspection out;
  std::string error;
  ASSERT_TRUE(parse_introspection(to_json(in), &out, &error)) << error;
  EXPECT_EQ(out.version, "1.2.3");
  EXPECT_EQ(out.limits, in.limits);
  EXPECT_EQ(out.stats.queue_pairs, 1u);
  EXPECT_EQ(out.connections_admitted, 7u);
  EXPECT_EQ(out.refusals_by_status, in.refusals_by_status);
  ASSERT_EQ(out.contexts.size(), 2u);
  EXPECT_EQ(out.contexts[0].cid, 42u);
  EXPECT_EQ(out.contexts[0].uid, 1000);
  EXPECT_EQ(out.contexts[0].events_received, in.contexts[0].events_received);
  EXPECT_EQ(out.contexts[1].role, Role::kHost);
  ASSERT_EQ(out.pairs.size(), 1u);
  EXPECT_EQ(out.pairs[0].handle.resource, 1024u);
  EXPECT_EQ(out.pairs[0].state, "attached-mem");
  EXPECT_EQ(out.pairs[0].creator_to_attacher.used, 100u);
  ASSERT_EQ(out.doorbells.size(), 1u);
  EXPECT_EQ(out.doorbells[0].rings, 10u);
  EXPECT_EQ(out.doorbells[0].notify_index, 7u);
  ASSERT_EQ(out.handles.size(), 1u);
  EXPECT_EQ(out.handles[0].handle.resource, 6000u);
}

TEST(Introspection, AReaderRefusesWhatIsNotASnapshotOfItsFormat) {
  Introspection out;
  std::string error;
  EXPECT_FALSE(parse_introspection("not json", &out, &error));
  EXPECT_NE(error.find("not an introspection snapshot"), std::string::npos);
  EXPECT_FALSE(parse_introspection(R"({"format": 2})", &out, &error));
  EXPECT_NE(error.find("format 2"), std::string::npos);
  EXPECT_FALSE(parse_introspection(R"({"format": 1, "pairs": [{"handle": "x"}]})", &out, &error));
  EXPECT_NE(error.find("not a handle"), std::string::npos);
  EXPECT_FALSE(parse_introspection(R"({"format": 1, "contexts": [{"connection": 1, "cid": 3, "role": "vm"}]})",
                                   &out, &error));
}

}  // namespace
}  // namespace vmci
