// The datagram fast path (vmci/proto/datagram_lane.h) across processes: a
// guest's datagrams to a host datagram handle go through a ring channel's
// lane once hostpeer routed the first; every byte and the order are
// checked, and the answers are the ones hostpeer would give.
#include <gtest/gtest.h>

#include <csignal>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "processes.h"
#include "stamped_payload.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace vmci::testing {
namespace {

// What a host datagram handle received, each payload checked against its
// stamp and its place in the stream.
class DatagramLog {
 public:
  DatagramCallback callback() {
    return [this](vmci_datagram* dg) {
      const uint64_t seq = stamped_sequence(static_cast<const uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                                            static_cast<size_t>(dg->payload_size));
      std::lock_guard lock(mutex_);
      if (seq != received_ && wrong_ == 0) first_wrong_ = received_;
      wrong_ += seq != received_;
      ++received_;
      changed_.notify_all();
      return 0;
    };
  }
  bool wait_for(uint64_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return received_ >= n; });
  }
  uint64_t received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  // Datagrams out of order or with a byte wrong, and where the first was.
  uint64_t wrong() {
    std::lock_guard lock(mutex_);
    return wrong_;
  }
  uint64_t first_wrong() {
    std::lock_guard lock(mutex_);
    return first_wrong_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t received_ = 0, wrong_ = 0, first_wrong_ = 0;
};

std::string text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

// A guest in its own process with a datagram handle; returns its handle.
std::string connect_guest(Peer& guest, const std::string& socket) {
  EXPECT_EQ(guest.call("connect " + socket + " guest").rfind("0 ", 0), 0u);
  const std::string created = guest.call("create any");
  EXPECT_EQ(created.rfind("0 ", 0), 0u) << created;
  return created.substr(2);
}

TEST(DatagramFastPath, AStormReachesAnEmbeddedHostWholeInOrderAndAllButTheFirstSkipHostpeer) {
  EmbeddedHostpeer hostpeer;
  DatagramLog log;
  auto host = hostpeer->connect_host();
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  Peer guest;
  const std::string src = connect_guest(guest, hostpeer.socket_path());
  constexpr uint64_t kCount = 50000;
  const std::string storm = guest.call("dg-storm " + src + " " + text(handle) + " " +
                                       std::to_string(kCount) + " 64", 30000);
  ASSERT_EQ(storm.substr(0, 2), "0 ") << storm;
  ASSERT_TRUE(log.wait_for(kCount)) << log.received();
  EXPECT_EQ(log.wrong(), 0u) << "first at " << log.first_wrong();
  const auto stats = hostpeer->stats();
  EXPECT_EQ(stats.datagrams_routed, 1u);  // the first, which earned the grant
  EXPECT_EQ(stats.ring_channels, 1u);
  EXPECT_EQ(stats.ring_grants, 1u);
  EXPECT_EQ(stats.pending_datagrams, 0u);
}

TEST(DatagramFastPath, AStormReachesAHostConnectionOfTheDaemonWholeAndInOrder) {
  Daemon daemon;
  DatagramLog log;
  int status;
  std::string error;
  auto host = guest::Driver::connect({.socket_path = daemon.socket_path(),
                                      .role = proto::Role::kHost},
                                     &status, &error);
  ASSERT_TRUE(host) << error;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  Peer guest;
  const std::string src = connect_guest(guest, daemon.socket_path());
  // Sizes that do not divide the lane, so records wrap at every offset.
  constexpr uint64_t kCount = 20000;
  const std::string storm = guest.call("dg-storm " + src + " " + text(handle) + " " +
                                       std::to_string(kCount) + " 1001", 30000);
  ASSERT_EQ(storm.substr(0, 2), "0 ") << storm;
  ASSERT_TRUE(log.wait_for(kCount)) << log.received();
  EXPECT_EQ(log.wrong(), 0u) << "first at " << log.first_wrong();
  proto::StatsBody stats{};
  ASSERT_EQ(host->hostpeer_stats(&stats), VMCI_SUCCESS);
  EXPECT_EQ(stats.datagrams_routed, 1u);
  EXPECT_EQ(stats.ring_grants, 1u);
}

TEST(DatagramFastPath, ADestroyedHandleIsInvalidResourceAtOnceAndOneMadeAgainIsGrantedAnew) {
  EmbeddedHostpeer hostpeer;
  DatagramLog before, after;
  auto host = hostpeer->connect_host();
  vmci_handle handle = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 4242);
  ASSERT_EQ(host->datagram_create_handle(4242, 0, 0, before.callback(), &handle), VMCI_SUCCESS);
  Peer guest;
  const std::string src = connect_guest(guest, hostpeer.socket_path());
  ASSERT_EQ(guest.call("dg-storm " + src + " 2:4242 100 8"), "0 0");
  ASSERT_TRUE(before.wait_for(100));
  ASSERT_EQ(host->datagram_destroy_handle(handle), VMCI_SUCCESS);
  EXPECT_EQ(hostpeer->stats().ring_grants, 0u);
  EXPECT_EQ(guest.call("send " + src + " 2:4242 00"), "-1");  // INVALID_RESOURCE (spec §3.5)

  ASSERT_EQ(host->datagram_create_handle(4242, 0, 0, after.callback(), &handle), VMCI_SUCCESS);
  ASSERT_EQ(guest.call("dg-storm " + src + " 2:4242 100 8"), "0 0");
  ASSERT_TRUE(after.wait_for(100));
  EXPECT_EQ(after.wrong(), 0u);
  EXPECT_EQ(before.received(), 100u);
  EXPECT_EQ(hostpeer->stats().ring_grants, 1u);
  EXPECT_EQ(hostpeer->stats().datagrams_routed, 2u);  // the first to each handle
}

TEST(DatagramFastPath, TheLaneRefusesWithNoResourcesWhileTheOwnerHoldsItsCallbacks) {
  EmbeddedHostpeer hostpeer;
  DatagramLog log;
  auto host = hostpeer->connect_host();
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  Peer guest;
  const std::string src = connect_guest(guest, hostpeer.socket_path());
  host->hold_callbacks();
  // 34816-byte datagrams (hex doubles). The first goes through hostpeer
  // (pending there); through the lane, pending + size >= 139264 is
  // refused, so 3 fit.
  const std::string big(2 * (34816 - 24), 'a');
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(guest.call("send " + src + " " + text(handle) + " " + big), "34816") << i;
  }
  EXPECT_EQ(guest.call("send " + src + " " + text(handle) + " " + big), "-19");
  host->release_callbacks();
  for (int i = 0; i < 500 && log.received() < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(log.received(), 4u);
  EXPECT_EQ(guest.call("send " + src + " " + text(handle) + " " + big), "34816");
}

TEST(DatagramFastPath, WhenTheOwnerGoesTheLaneGoesAndSendsGetHostpeersAnswer) {
  EmbeddedHostpeer hostpeer;
  DatagramLog log;
  int status;
  std::string error;
  auto owner = guest::Driver::connect(
      {.socket_path = hostpeer.socket_path(), .role = proto::Role::kHost}, &status, &error);
  ASSERT_TRUE(owner) << error;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(owner->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  Peer guest;
  const std::string src = connect_guest(guest, hostpeer.socket_path());
  ASSERT_EQ(guest.call("dg-storm " + src + " " + text(handle) + " 10 8"), "0 0");
  ASSERT_TRUE(log.wait_for(10));
  EXPECT_EQ(hostpeer->stats().ring_channels, 1u);
  owner.reset();
  for (int i = 0; i < 200 && hostpeer->stats().ring_channels != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(hostpeer->stats().ring_channels, 0u);
  EXPECT_EQ(guest.call("send " + src + " " + text(handle) + " 00"), "-1");
}

// Found by the soak: datagrams a guest was told were sent must arrive even
// if it disconnects before the host read them from the lane.
TEST(DatagramFastPath, WhatAGuestSentBeforeItLeftArrivesAllOfIt) {
  EmbeddedHostpeer hostpeer;
  DatagramLog log;
  auto host = hostpeer->connect_host();
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  host->hold_callbacks();  // nothing is read from the lane until the guest is gone
  {
    Peer guest;
    const std::string src = connect_guest(guest, hostpeer.socket_path());
    ASSERT_EQ(guest.call("dg-storm " + src + " " + text(handle) + " 1000 64"), "0 0");
    guest.call("quit");
    guest.process().wait(10000);
  }
  for (int i = 0; i < 500 && hostpeer->stats().guest_contexts != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(hostpeer->stats().ring_channels, 0u);
  host->release_callbacks();
  ASSERT_TRUE(log.wait_for(1000)) << log.received();
  EXPECT_EQ(log.wrong(), 0u) << "first at " << log.first_wrong();
}

TEST(DatagramFastPath, ARestrictedGuestGetsNoLaneToAHandleItMayNotReach) {
  EmbeddedHostpeer hostpeer;
  DatagramLog log;
  auto host = hostpeer->connect_host();
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, log.callback(), &handle),
            VMCI_SUCCESS);
  Peer restricted;
  ASSERT_EQ(restricted.call("connect " + hostpeer.socket_path() + " guest 300 restricted"),
            "0 300");
  ASSERT_EQ(restricted.call("create any"), "0 300:1024");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(restricted.call("send 300:1024 " + text(handle) + " 00"), "-7");  // NO_ACCESS
  }
  EXPECT_EQ(hostpeer->stats().ring_grants, 0u);
  EXPECT_EQ(log.received(), 0u);
}

}  // namespace
}  // namespace vmci::testing
