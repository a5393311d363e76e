// Host-to-guest datagram lanes (protocol 2.3, kFeatureHostLanes): once
// hostpeer has routed a host handle's datagram to a guest, the host's next
// datagrams from that handle to that guest go through a ring channel's lane
// instead. Every byte and the order are checked, the answers are the ones
// hostpeer would give, and what hostpeer delivers because of something the
// host did after a send (a detach's event) comes after that send.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "processes.h"
#include "stamped_payload.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace vmci::testing {
namespace {

vmci_handle parse(const std::string& text) {
  const auto colon = text.find(':');
  return VMCI_MAKE_HANDLE(static_cast<vmci_id>(std::stoul(text.substr(0, colon))),
                          static_cast<vmci_id>(std::stoul(text.substr(colon + 1))));
}

// A peer process connected as `role` with a datagram handle; returns it.
std::string connect_with_handle(Peer& peer, const std::string& socket, const std::string& role) {
  EXPECT_EQ(peer.call("connect " + socket + " " + role).rfind("0 ", 0), 0u);
  const std::string created = peer.call("create any");
  EXPECT_EQ(created.rfind("0 ", 0), 0u) << created;
  return created.substr(2);
}

// A new datagram handle of `host` that only sends (its callback ignores
// anything); VMCI_INVALID_HANDLE if it cannot be made.
vmci_handle sending_handle(Endpoint& host) {
  vmci_handle handle = VMCI_INVALID_HANDLE;
  const int status = host.datagram_create_handle(
      VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &handle);
  EXPECT_EQ(status, VMCI_SUCCESS);
  return handle;
}

// Sends `count` stamped datagrams of `size` payload bytes from `src` to
// `dst`, retrying one refused with NO_RESOURCES (the guest is reading).
int send_stamped(Endpoint& host, vmci_handle src, vmci_handle dst, uint64_t count, size_t size) {
  std::vector<uint8_t> buf(sizeof(vmci_datagram) + size);
  auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
  dg->src = src;
  dg->dst = dst;
  dg->payload_size = size;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (uint64_t seq = 0; seq < count;) {
    stamped_payload(seq, static_cast<uint8_t*>(VMCI_DG_PAYLOAD(dg)), size);
    const int result = host.datagram_send(dg);
    if (result == VMCI_ERROR_NO_RESOURCES && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    } else if (result < VMCI_SUCCESS) {
      return result;
    } else {
      ++seq;
    }
  }
  return VMCI_SUCCESS;
}

TEST(HostDatagramLane, AnEmbeddedHostsStormReachesAGuestProcessWholeInOrderAllButTheFirstSkipHostpeer) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  const vmci_handle src = sending_handle(*host);
  ASSERT_FALSE(VMCI_HANDLE_INVALID(src));
  Peer guest;
  const vmci_handle dst = parse(connect_with_handle(guest, hostpeer.socket_path(), "guest"));
  constexpr uint64_t kCount = 20000;
  std::thread sender([&] { EXPECT_EQ(send_stamped(*host, src, dst, kCount, 64), VMCI_SUCCESS); });
  EXPECT_EQ(guest.call("dg-check " + std::to_string(kCount) + " 20000", 60000), "20000 0 0");
  sender.join();
  const auto stats = hostpeer->stats();
  EXPECT_EQ(stats.datagrams_routed, 1u);  // the first, which earned the lane
  EXPECT_EQ(stats.ring_grants, 1u);
  EXPECT_EQ(stats.pending_datagrams, 0u);
}

TEST(HostDatagramLane, ADaemonHostConnectionsStormReachesAGuestWholeAndInOrder) {
  Daemon daemon;
  Peer host, guest;
  const std::string src = connect_with_handle(host, daemon.socket_path(), "host");
  const std::string dst = connect_with_handle(guest, daemon.socket_path(), "guest");
  // Sizes that do not divide the lane, so records wrap at every offset.
  constexpr int kCount = 10000;
  ASSERT_EQ(host.call("dg-storm " + src + " " + dst + " " + std::to_string(kCount) + " 1001",
                      30000)
                .substr(0, 2),
            "0 ");
  EXPECT_EQ(guest.call("dg-check " + std::to_string(kCount) + " 20000", 60000), "10000 0 0");
  const std::string stats = host.call("stats");
  EXPECT_NE(stats.find("ring_channels=1"), std::string::npos) << stats;
}

TEST(HostDatagramLane, TheLaneRefusesWithNoResourcesWhereHostpeerWouldWhileTheGuestHoldsItsCallbacks) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  const vmci_handle src = sending_handle(*host);
  ASSERT_FALSE(VMCI_HANDLE_INVALID(src));
  Peer guest;
  const vmci_handle dst = parse(connect_with_handle(guest, hostpeer.socket_path(), "guest"));
  ASSERT_EQ(guest.call("hold"), "ok");
  // 34816-byte datagrams. The first goes through hostpeer (pending there);
  // the lane's cap leaves room for it, so that, as through hostpeer alone,
  // pending + size >= 139264 is refused: 3 fit (spec §3.5, item 34).
  std::vector<uint8_t> buf(34816);
  auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
  dg->src = src;
  dg->dst = dst;
  dg->payload_size = buf.size() - sizeof(vmci_datagram);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(host->datagram_send(dg), 34816) << i;
  EXPECT_EQ(host->datagram_send(dg), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(hostpeer->stats().datagrams_routed, 1u);
  ASSERT_EQ(guest.call("release"), "ok");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(guest.call("next 5000").rfind("datagram ", 0), 0u) << i;
  EXPECT_EQ(host->datagram_send(dg), 34816);
}

TEST(HostDatagramLane, WhenTheGuestGoesOrTheHandleIsDestroyedSendsGetHostpeersAnswer) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  const auto ignore = [](vmci_datagram*) { return 0; };
  vmci_handle laned = VMCI_INVALID_HANDLE, plain = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, ignore, &laned), VMCI_SUCCESS);
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, ignore, &plain), VMCI_SUCCESS);
  vmci_datagram dg{};
  dg.payload_size = 0;
  {
    Peer guest;
    dg.dst = parse(connect_with_handle(guest, hostpeer.socket_path(), "guest"));
    dg.src = laned;
    for (int i = 0; i < 10; ++i) ASSERT_EQ(host->datagram_send(&dg), 24) << i;
    ASSERT_EQ(hostpeer->stats().ring_grants, 1u);
    EXPECT_EQ(guest.call("dg-check 0 10"), "0 0 0");
    guest.call("quit");
    guest.process().wait(10000);
  }
  for (int i = 0; i < 500 && hostpeer->stats().guest_contexts != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The guest is gone: through the lane's handle and a handle that never
  // had one alike.
  dg.src = plain;
  const int unreachable = host->datagram_send(&dg);
  EXPECT_LT(unreachable, VMCI_SUCCESS);
  dg.src = laned;
  EXPECT_EQ(host->datagram_send(&dg), unreachable);

  // A new guest, a lane from `laned`, then `laned` destroyed.
  Peer again;
  dg.dst = parse(connect_with_handle(again, hostpeer.socket_path(), "guest"));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(host->datagram_send(&dg), 24) << i;
  ASSERT_EQ(host->datagram_destroy_handle(plain), VMCI_SUCCESS);
  dg.src = plain;
  const int not_owned = host->datagram_send(&dg);
  EXPECT_LT(not_owned, VMCI_SUCCESS);
  ASSERT_EQ(host->datagram_destroy_handle(laned), VMCI_SUCCESS);
  dg.src = laned;
  EXPECT_EQ(host->datagram_send(&dg), not_owned);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(again.call("next 5000").rfind("datagram ", 0), 0u) << i;
  EXPECT_EQ(again.call("next 100"), "none");
}

TEST(HostDatagramLane, WhatAHostSentBeforeItLeftArrivesAllOfIt) {
  Daemon daemon;
  Peer guest;
  const std::string dst = connect_with_handle(guest, daemon.socket_path(), "guest");
  ASSERT_EQ(guest.call("hold"), "ok");  // nothing is read from the lane until the host is gone
  {
    Peer host;
    const std::string src = connect_with_handle(host, daemon.socket_path(), "host");
    ASSERT_EQ(host.call("dg-storm " + src + " " + dst + " 1000 64"), "0 0");
    host.call("quit");
    host.process().wait(10000);
  }
  for (int i = 0; i < 500; ++i) {
    if (guest.call("stats").find("host_connections=0") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(guest.call("release"), "ok");
  EXPECT_EQ(guest.call("dg-check 1000 5000", 30000), "1000 0 0");
}

// What a guest's callbacks saw, in order: "dg N" for a stamped datagram,
// "detach" for QP_PEER_DETACH.
class CallbackLog {
 public:
  void add(std::string entry) {
    std::lock_guard lock(mutex_);
    entries_.push_back(std::move(entry));
    changed_.notify_all();
  }
  bool wait_for(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return entries_.size() >= n; });
  }
  std::vector<std::string> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(entries_, {});
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> entries_;
};

// The host sends through its lane, detaches, and sends again: hostpeer
// delivers the detach's event, which must come after the datagrams sent
// before it (the guest takes the lanes first) and before those sent after
// it (the lane's barrier records).
TEST(HostDatagramLane, ADetachsEventComesBetweenTheDatagramsSentBeforeAndAfterIt) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  const vmci_handle src = sending_handle(*host);
  ASSERT_FALSE(VMCI_HANDLE_INVALID(src));
  int status;
  std::string error;
  auto guest = guest::Driver::connect({.socket_path = hostpeer.socket_path()}, &status, &error);
  ASSERT_TRUE(guest) << error;
  CallbackLog log;
  vmci_handle dst = VMCI_INVALID_HANDLE;
  ASSERT_EQ(guest->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0,
                [&](vmci_datagram* dg) {
                  log.add("dg " + std::to_string(stamped_sequence(
                                      static_cast<const uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                                      static_cast<size_t>(dg->payload_size))));
                  return 0;
                },
                &dst),
            VMCI_SUCCESS);
  vmci_id sub = VMCI_INVALID_ID;
  ASSERT_EQ(guest->event_subscribe(VMCI_EVENT_QP_PEER_DETACH,
                                   [&](vmci_id, vmci_event_data*) { log.add("detach"); }, &sub),
            VMCI_SUCCESS);
  constexpr int kRounds = 200, kPerRound = 8;
  std::vector<uint8_t> buf(sizeof(vmci_datagram) + 8);
  auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
  dg->src = src;
  dg->dst = dst;
  dg->payload_size = 8;
  uint64_t seq = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::unique_ptr<QueuePair> host_qp, guest_qp;
    vmci_handle pair = VMCI_INVALID_HANDLE;
    ASSERT_EQ(host->qpair_alloc(&host_qp, &pair, 4096, 4096, dst.context, 0, 0), VMCI_SUCCESS);
    ASSERT_EQ(guest->qpair_alloc(&guest_qp, &pair, 4096, 4096, VMCI_HOST_CONTEXT_ID, 0, 0),
              VMCI_SUCCESS);
    std::vector<std::string> expected;
    const uint64_t routed_before = hostpeer->stats().datagrams_routed;
    for (int i = 0; i < kPerRound; ++i, ++seq) {
      stamped_payload(seq, static_cast<uint8_t*>(VMCI_DG_PAYLOAD(dg)), 8);
      ASSERT_EQ(host->datagram_send(dg), static_cast<int>(buf.size())) << round << " " << i;
      expected.push_back("dg " + std::to_string(seq));
    }
    // All through the lane but the very first.
    ASSERT_EQ(hostpeer->stats().datagrams_routed - routed_before, round == 0 ? 1u : 0u);
    // While the guest holds its callbacks, the event waits in its inbox and
    // what the host sends next waits in the lane: the barrier record in
    // front of it keeps it behind the event.
    if (round % 2 == 1) guest->hold_callbacks();
    ASSERT_EQ(host->qpair_detach(&host_qp), VMCI_SUCCESS);
    expected.push_back("detach");
    for (int i = 0; i < kPerRound; ++i, ++seq) {
      stamped_payload(seq, static_cast<uint8_t*>(VMCI_DG_PAYLOAD(dg)), 8);
      ASSERT_EQ(host->datagram_send(dg), static_cast<int>(buf.size())) << round << " " << i;
      expected.push_back("dg " + std::to_string(seq));
    }
    if (round % 2 == 1) guest->release_callbacks();
    ASSERT_TRUE(log.wait_for(expected.size())) << "round " << round;
    ASSERT_EQ(log.take(), expected) << "round " << round;
    ASSERT_EQ(guest->qpair_detach(&guest_qp), VMCI_SUCCESS);
  }
}

}  // namespace
}  // namespace vmci::testing
