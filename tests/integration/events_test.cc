// Events across processes: CTX_REMOVED when a guest context goes away.
#include <gtest/gtest.h>
#include <signal.h>

#include "processes.h"

namespace vmci::testing {
namespace {

TEST(Events, CtxRemovedReachesEveryHostSubscriberWhenAGuestIsKilled) {
  Daemon daemon;
  Peer host1, host2, vm;
  ASSERT_EQ(host1.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host2.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host1.call("subscribe CTX_REMOVED"), "0 1");
  ASSERT_EQ(host2.call("subscribe CTX_REMOVED"), "0 1");
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest 42"), "0 42");
  vm.process().signal(SIGKILL);
  EXPECT_EQ(host1.call("next 3000"), "event 1 CTX_REMOVED 42");
  EXPECT_EQ(host2.call("next 3000"), "event 1 CTX_REMOVED 42");
}

TEST(Events, CtxRemovedOnCleanDisconnectToo) {
  Daemon daemon;
  Peer host, vm;
  ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host.call("subscribe CTX_REMOVED"), "0 1");
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest"), "0 16");
  vm.call("quit", 200);
  EXPECT_EQ(host.call("next 3000"), "event 1 CTX_REMOVED 16");
}

TEST(Events, HostConnectionClosingSendsNoCtxRemoved) {
  Daemon daemon;
  Peer host, other_host;
  ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host.call("subscribe CTX_REMOVED"), "0 1");
  ASSERT_EQ(other_host.call("connect " + daemon.socket_path() + " host"), "0 2");
  other_host.process().signal(SIGKILL);
  EXPECT_EQ(host.call("next 500"), "none");
}

TEST(Events, KilledGuestsHandlesAndIdAreFreed) {
  Daemon daemon;
  Peer host, vm, again;
  ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host.call("subscribe CTX_REMOVED"), "0 1");
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest 50"), "0 50");
  vm.process().signal(SIGKILL);
  ASSERT_EQ(host.call("next 3000"), "event 1 CTX_REMOVED 50");
  EXPECT_EQ(again.call("connect " + daemon.socket_path() + " guest 50"), "0 50");
  ASSERT_EQ(host.call("create any"), "0 2:1024");
  EXPECT_EQ(host.call("send 2:1024 50:1024 00"), "25");
}

TEST(Events, Item24_SubscribingToUnsubscribableTypesIsInvalidArgs) {
  Daemon daemon;
  Peer vm;
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest"), "0 16");
  EXPECT_EQ(vm.call("subscribe MEM_ACCESS_ON"), "-2 0");
  EXPECT_EQ(vm.call("subscribe MEM_ACCESS_OFF"), "-2 0");
  EXPECT_EQ(vm.call("subscribe GUEST_PAUSED"), "-2 0");
  EXPECT_EQ(vm.call("subscribe QP_PEER_ATTACH"), "0 1");
}

TEST(Events, Item25_SubscriptionIdsStartAt1AcrossTypes) {
  Daemon daemon;
  Peer vm;
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest"), "0 16");
  EXPECT_EQ(vm.call("subscribe CTX_ID_UPDATE"), "0 1");
  EXPECT_EQ(vm.call("subscribe QP_PEER_DETACH"), "0 2");
  EXPECT_EQ(vm.call("unsubscribe 1"), "0");
  EXPECT_EQ(vm.call("unsubscribe 1"), "-21");
  EXPECT_EQ(vm.call("subscribe CTX_ID_UPDATE"), "0 3");
}

}  // namespace
}  // namespace vmci::testing
