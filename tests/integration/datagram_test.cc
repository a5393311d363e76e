// Datagrams between processes through the real daemon (spec §3, §11).
#include <gtest/gtest.h>

#include "processes.h"

namespace vmci::testing {
namespace {

class Datagrams : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
    ASSERT_EQ(vm1.call("connect " + daemon.socket_path() + " guest 100"), "0 100");
    ASSERT_EQ(vm2.call("connect " + daemon.socket_path() + " guest 200"), "0 200");
    ASSERT_EQ(host.call("create 4242"), "0 2:4242");
    ASSERT_EQ(vm1.call("create any"), "0 100:1024");
    ASSERT_EQ(vm2.call("create any"), "0 200:1024");
  }

  Daemon daemon;
  Peer host, vm1, vm2;
};

TEST_F(Datagrams, GuestToHostArrivesWithItsPayload) {
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 68656c6c6f"), "29");
  EXPECT_EQ(host.call("next 2000"), "datagram 2:4242 100:1024 68656c6c6f");
}

TEST_F(Datagrams, HostToGuestArrivesWithItsPayload) {
  ASSERT_EQ(host.call("create any"), "0 2:1024");
  EXPECT_EQ(host.call("send 2:1024 100:1024 0102"), "26");
  EXPECT_EQ(vm1.call("next 2000"), "datagram 100:1024 2:1024 0102");
}

TEST_F(Datagrams, Item22_SuccessfulSendReturnsHeaderPlusPayload) {
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 -"), "24");
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 " + std::string(2000, 'a')), "1024");
}

TEST_F(Datagrams, Item19_SourceHandleNotCreatedHereIsNoHandle) {
  EXPECT_EQ(vm1.call("send 100:5555 2:4242 00"), "-8");
  EXPECT_EQ(vm1.call("send 200:1024 2:4242 00"), "-8") << "another guest's handle";
}

TEST_F(Datagrams, Item12_VmToVmIsDstUnreachable) {
  EXPECT_EQ(vm1.call("send 100:1024 200:1024 00"), "-10");
  EXPECT_EQ(vm2.call("next 200"), "none");
}

TEST_F(Datagrams, Item21_GuestToUnknownHostResourceIsInvalidResource) {
  EXPECT_EQ(vm1.call("send 100:1024 2:9999 00"), "-1");
}

TEST_F(Datagrams, Item21_HostToUnknownGuestResourceSucceedsAndIsDropped) {
  ASSERT_EQ(host.call("create any"), "0 2:1024");
  EXPECT_EQ(host.call("send 2:1024 100:7777 00"), "25");
  EXPECT_EQ(vm1.call("next 300"), "none");
}

TEST_F(Datagrams, HostToMissingContextIsDstUnreachable) {
  ASSERT_EQ(host.call("create any"), "0 2:1024");
  EXPECT_EQ(host.call("send 2:1024 555:1024 00"), "-10");
}

TEST_F(Datagrams, Item34_PendingCapRefusesWithNoResources) {
  // vm1 holds its callbacks, so everything sent to it stays pending.
  ASSERT_EQ(host.call("create any"), "0 2:1024");
  ASSERT_EQ(vm1.call("hold"), "ok");
  const std::string big(2 * 34816 - 48, 'a');  // 34816-byte datagrams (hex doubles)
  // 139264 / 34816 = 4: refused when pending + size >= 139264, so 3 fit.
  EXPECT_EQ(host.call("send 2:1024 100:1024 " + big), "34816");
  EXPECT_EQ(host.call("send 2:1024 100:1024 " + big), "34816");
  EXPECT_EQ(host.call("send 2:1024 100:1024 " + big), "34816");
  EXPECT_EQ(host.call("send 2:1024 100:1024 " + big), "-19");
  // Other contexts are not affected.
  EXPECT_EQ(host.call("send 2:1024 200:1024 " + big), "34816");
  // Once vm1's callbacks ran, the room is back.
  ASSERT_EQ(vm1.call("release"), "ok");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(vm1.call("next 2000").substr(0, 8), "datagram");
  EXPECT_EQ(host.call("send 2:1024 100:1024 " + big), "34816");
}

TEST_F(Datagrams, Item20_OversizedDatagramIsInvalidArgs) {
  const std::string too_big(2 * (69632 - 24 + 1), '0');
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 " + too_big), "-2");
  const std::string largest(2 * (69632 - 24), '0');
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 " + largest), "69632");
}

TEST_F(Datagrams, HandlesOfOneHostConnectionAreNotAnothers) {
  Peer host2;
  ASSERT_EQ(host2.call("connect " + daemon.socket_path() + " host"), "0 2");
  EXPECT_EQ(host2.call("send 2:4242 100:1024 00"), "-8");  // host's handle, not host2's
  EXPECT_EQ(host2.call("destroy 2:4242"), "-21");
  EXPECT_EQ(host2.call("create 4242"), "-9 4294967295:4294967295");  // DUPLICATE_ENTRY
}

TEST_F(Datagrams, HostConnectionsReachEachOtherInContext2) {
  Peer host2;
  ASSERT_EQ(host2.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host2.call("create 5000"), "0 2:5000");
  EXPECT_EQ(host2.call("send 2:5000 2:4242 ab"), "25");
  EXPECT_EQ(host.call("next 2000"), "datagram 2:4242 2:5000 ab");
}

TEST_F(Datagrams, RestrictedGuestCannotReachAnUntrustedHostHandle) {
  Peer restricted;
  ASSERT_EQ(restricted.call("connect " + daemon.socket_path() + " guest 300 restricted"), "0 300");
  ASSERT_EQ(restricted.call("create any"), "0 300:1024");
  EXPECT_EQ(restricted.call("send 300:1024 2:4242 00"), "-7");
  ASSERT_EQ(host.call("create 4343 0 2"), "0 2:4343");  // a TRUSTED host handle
  EXPECT_EQ(restricted.call("send 300:1024 2:4343 00"), "25");
}

TEST_F(Datagrams, DestroyedHostHandleIsInvalidResourceAfterwards) {
  ASSERT_EQ(host.call("destroy 2:4242"), "0");
  EXPECT_EQ(vm1.call("send 100:1024 2:4242 00"), "-1");
}

}  // namespace
}  // namespace vmci::testing
