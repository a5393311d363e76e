// tables_test.cc: vmci-ctl's tables, from a snapshot made here.
#include "tables.h"

#include <gtest/gtest.h>

namespace vmci::ctl {
namespace {

Introspection two_guests_and_a_pair() {
  Introspection s;
  s.version = "1.0.0";
  s.protocol = "2.2";
  s.started_unix_ms = 0;
  s.now_unix_ms = 65'000;
  s.stats.guest_contexts = 2;
  ContextInfo host;
  host.connection = 1;
  host.cid = 2;
  host.role = Role::kHost;
  host.pid = 100;
  host.uid = 0;
  s.contexts.push_back(host);
  ContextInfo guest;
  guest.connection = 2;
  guest.cid = 1000;
  guest.pid = 200;
  guest.uid = 1000;
  guest.since_unix_ms = 5'000;
  guest.datagrams_sent = 3;
  guest.bytes_sent = 3 * 1024;
  guest.events_received = {{"VMCI_EVENT_QP_PEER_ATTACH", 1}};
  s.contexts.push_back(guest);
  PairInfo p;
  p.handle = {1000, 7};
  p.state = "attached-mem";
  p.creator_cid = 1000;
  p.creator_connection = 2;
  p.attacher_cid = 2;
  p.attacher_connection = 1;
  p.creator_to_attacher = {65536, 1536};
  p.attacher_to_creator = {65536, 0};
  s.pairs.push_back(p);
  return s;
}

TEST(Tables, ContextsHaveOneAlignedRowEach) {
  const std::string text = render(two_guests_and_a_pair(), View::kContexts);
  EXPECT_EQ(text.rfind("CONN  CID   ROLE   PID  UID   AGE", 0), 0u) << text;
  EXPECT_NE(text.find("\n2     1000  guest  200  1000  1m00s  3     3.0 KiB"), std::string::npos)
      << text;
}

TEST(Tables, PairsShowStateEndpointsAndFill) {
  const std::string text = render(two_guests_and_a_pair(), View::kPairs);
  EXPECT_NE(text.find("1000:7  attached-mem  1000 (conn 2)  2 (conn 1)  hostpeer  1.5 KiB/64.0 KiB"),
            std::string::npos)
      << text;
}

TEST(Tables, AnEmptyTableSaysNone) {
  EXPECT_NE(render(two_guests_and_a_pair(), View::kDoorbells).find("(none)"), std::string::npos);
}

TEST(Tables, SubscriptionsAreTheEventsDelivered) {
  const std::string text = render(two_guests_and_a_pair(), View::kSubscriptions);
  EXPECT_NE(text.find("2     1000  VMCI_EVENT_QP_PEER_ATTACH  1"), std::string::npos) << text;
}

TEST(Tables, StatusNamesVersionAndUptime) {
  EXPECT_EQ(render(two_guests_and_a_pair(), View::kStatus).rfind("hostpeer 1.0.0, protocol 2.2, up 1m05s", 0),
            0u);
}

TEST(Tables, UnitsAndAges) {
  EXPECT_EQ(bytes_text(7), "7 B");
  EXPECT_EQ(bytes_text(1536), "1.5 KiB");
  EXPECT_EQ(bytes_text(3ull << 30), "3.0 GiB");
  EXPECT_EQ(age_text(4'000), "4s");
  EXPECT_EQ(age_text(3'725'000), "1h02m");
  EXPECT_EQ(age_text(-5), "0s");
  EXPECT_EQ(view_from_name("pairs"), View::kPairs);
  EXPECT_FALSE(view_from_name("pair"));
}

}  // namespace
}  // namespace vmci::ctl
