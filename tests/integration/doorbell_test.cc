// Doorbells across processes and threads: every doorbell rung from many
// threads of another process is seen; indexes shared beyond 4096 doorbells
// ring every doorbell on them (item 27).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <condition_variable>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace vmci::testing {
namespace {

// Counts callbacks per doorbell and waits for them.
class RingLog {
 public:
  DoorbellCallback callback(int id) {
    return [this, id] {
      std::lock_guard lock(mutex_);
      ++counts_[id];
      changed_.notify_all();
    };
  }
  bool wait_all_seen(int n, std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      for (int i = 0; i < n; ++i) {
        if (counts_[i] == 0) return false;
      }
      return true;
    });
  }
  int count(int id) {
    std::lock_guard lock(mutex_);
    return counts_[id];
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<int, int> counts_;
};

// Many guest threads in another process (vmci-test-peer) ring many host
// doorbells; the host sees every one at least once, and never one that was
// not rung.
TEST(Doorbells, EveryDoorbellRungFromAnotherProcessIsSeen) {
  EmbeddedHostpeer hostpeer;
  RingLog log;  // before the endpoint: it outlives every callback
  auto host = hostpeer->connect_host();
  constexpr int kDoorbells = 200;
  std::vector<vmci_handle> handles(kDoorbells, VMCI_INVALID_HANDLE);
  for (int i = 0; i < kDoorbells; ++i) {
    ASSERT_EQ(host->doorbell_create(&handles[i], 0, 0, log.callback(i)), VMCI_SUCCESS);
  }
  // The other process: 8 threads, each ringing every doorbell 5 times.
  Peer guest;
  ASSERT_EQ(guest.call("connect " + hostpeer.socket_path() + " guest").rfind("0 ", 0), 0u);
  std::string targets;
  for (const auto& h : handles) {
    targets += " " + std::to_string(h.context) + ":" + std::to_string(h.resource);
  }
  std::istringstream storm(guest.call("ring-storm 8 5" + targets, 60000));
  int status = -1;
  uint64_t direct = 0, woke = 0, through_hostpeer = 0;
  storm >> status >> direct >> woke >> through_hostpeer;
  EXPECT_EQ(status, 0);
  EXPECT_EQ(direct + woke + through_hostpeer, uint64_t{kDoorbells} * 8 * 5);
  // Each doorbell's first ring goes through hostpeer (which grants a ring
  // channel slot); most later ones do not.
  EXPECT_GE(through_hostpeer, uint64_t{kDoorbells});
  EXPECT_GT(direct + woke, through_hostpeer);
  EXPECT_TRUE(log.wait_all_seen(kDoorbells, std::chrono::seconds(30)));
  for (int i = 0; i < kDoorbells; ++i) EXPECT_LE(log.count(i), 8 * 5) << i;
  const host::Stats stats = hostpeer->stats();
  EXPECT_EQ(stats.doorbells_rung, through_hostpeer);
  EXPECT_EQ(stats.ring_channels, 1u);  // this guest -> the host endpoint
  EXPECT_EQ(stats.ring_grants, uint64_t{kDoorbells});
}

// A ring that comes before the driver's waiter thread has even started
// must not be lost (it once was: the thread read the sequence late).
TEST(Doorbells, ARingRightAfterConnectingIsNotLost) {
  EmbeddedHostpeer hostpeer;
  std::string error;
  auto host = hostpeer->connect_host();
  for (int round = 0; round < 100; ++round) {
    RingLog log;
    int status;
    auto guest = guest::Driver::connect({.socket_path = hostpeer.socket_path()}, &status, &error);
    ASSERT_TRUE(guest) << error;
    vmci_handle bell = VMCI_INVALID_HANDLE;
    ASSERT_EQ(guest->doorbell_create(&bell, 0, 0, log.callback(0)), VMCI_SUCCESS);
    ASSERT_EQ(host->doorbell_notify(bell, 0), VMCI_SUCCESS);
    ASSERT_TRUE(log.wait_all_seen(1, std::chrono::seconds(5))) << "round " << round;
    guest.reset();  // before the log it calls
  }
}

TEST(Doorbells, Item27_BeyondTheBitmapIndexesAreSharedAndEveryDoorbellOnOneFires) {
  host::Options options;
  options.limits.max_doorbells_per_context = 5000;
  EmbeddedHostpeer hostpeer(options);
  std::string error;
  RingLog log;
  int status;
  auto guest = guest::Driver::connect({.socket_path = hostpeer.socket_path()}, &status, &error);
  ASSERT_TRUE(guest) << error;
  auto host = hostpeer->connect_host();
  // 4096 doorbells take indexes 0..4095; the 4097th shares index 0.
  std::vector<vmci_handle> handles(4097, VMCI_INVALID_HANDLE);
  for (size_t i = 0; i < handles.size(); ++i) {
    ASSERT_EQ(guest->doorbell_create(&handles[i], 0, 0, log.callback(static_cast<int>(i))),
              VMCI_SUCCESS)
        << i;
  }
  ASSERT_EQ(host->doorbell_notify(handles[4096], 0), VMCI_SUCCESS);
  for (int i = 0; i < 500 && (log.count(0) == 0 || log.count(4096) == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(log.count(4096), 1);
  EXPECT_EQ(log.count(0), 1) << "the doorbell sharing index 0 fires too";
  EXPECT_EQ(log.count(1), 0);
}

}  // namespace
}  // namespace vmci::testing

namespace vmci::testing {
namespace {

// How a vmci-test-peer's ring-storm went.
struct Storm {
  int status = 1;
  uint64_t direct = 0, woke = 0, through_hostpeer = 0;
};

Storm ring_storm(Peer& peer, int threads, int times, vmci_handle target) {
  std::istringstream answer(peer.call("ring-storm " + std::to_string(threads) + " " +
                                          std::to_string(times) + " " +
                                          std::to_string(target.context) + ":" +
                                          std::to_string(target.resource),
                                      60000));
  Storm s;
  answer >> s.status >> s.direct >> s.woke >> s.through_hostpeer;
  return s;
}

// The fast path: once hostpeer let a guest ring a doorbell, its next rings
// set a ring-channel slot themselves. While the owner's delivery thread is
// busy (here: inside the doorbell's callback) none of them makes a system
// call, and all of them together are one more callback (§5.4).
TEST(DoorbellFastPath, RingsWhileTheOwnerIsBusyMakeNoSystemCallAndCoalesce) {
  EmbeddedHostpeer hostpeer;
  std::mutex mutex;
  std::condition_variable changed;
  int callbacks = 0;
  bool let_go = false;
  auto host = hostpeer->connect_host();
  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0,
                                  [&] {
                                    std::unique_lock lock(mutex);
                                    ++callbacks;
                                    changed.notify_all();
                                    changed.wait(lock, [&] { return let_go; });
                                  }),
            VMCI_SUCCESS);
  Peer guest;
  ASSERT_EQ(guest.call("connect " + hostpeer.socket_path() + " guest").rfind("0 ", 0), 0u);
  const Storm first = ring_storm(guest, 1, 1, bell);
  ASSERT_EQ(first.status, 0);
  EXPECT_EQ(first.through_hostpeer, 1u);  // the ring that brings the grant
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return callbacks == 1; }));
  }
  const Storm busy = ring_storm(guest, 1, 10000, bell);
  ASSERT_EQ(busy.status, 0);
  EXPECT_EQ(busy.through_hostpeer, 0u);
  EXPECT_EQ(busy.woke, 0u);  // nobody slept on the channel: no FUTEX_WAKE
  EXPECT_EQ(busy.direct, 10000u);
  EXPECT_EQ(hostpeer->stats().doorbells_rung, 1u);
  {
    std::unique_lock lock(mutex);
    let_go = true;
    changed.notify_all();
    ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return callbacks == 2; }));
  }
  // A ring now finds the owner asleep: one FUTEX_WAKE, one callback.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const Storm asleep = ring_storm(guest, 1, 1, bell);
  EXPECT_EQ(asleep.woke, 1u);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return callbacks == 3; }));
  EXPECT_FALSE(changed.wait_for(lock, std::chrono::milliseconds(200), [&] { return callbacks > 3; }));
}

// §5.2 holds on the fast path: a destroyed doorbell is NOT_FOUND at once,
// though the ringer had a slot for it; made again, it is rung again (a new
// grant), and the old slot never rings it.
TEST(DoorbellFastPath, ADestroyedDoorbellIsNotFoundAtOnceAndAnewOneRingsAgain) {
  EmbeddedHostpeer hostpeer;
  RingLog log;
  auto host = hostpeer->connect_host();
  const vmci_handle fixed = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 5000);
  vmci_handle bell = fixed;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0, log.callback(0)), VMCI_SUCCESS);
  Peer guest;
  ASSERT_EQ(guest.call("connect " + hostpeer.socket_path() + " guest").rfind("0 ", 0), 0u);
  ASSERT_EQ(ring_storm(guest, 1, 2, bell).status, 0);  // the second through the channel
  ASSERT_TRUE(log.wait_all_seen(1, std::chrono::seconds(10)));
  ASSERT_EQ(host->doorbell_destroy(bell), VMCI_SUCCESS);
  EXPECT_EQ(hostpeer->stats().ring_grants, 0u);
  const Storm gone = ring_storm(guest, 1, 1, bell);
  EXPECT_EQ(gone.status, VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(gone.through_hostpeer, 1u);
  bell = fixed;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0, log.callback(1)), VMCI_SUCCESS);
  const Storm again = ring_storm(guest, 1, 3, bell);
  EXPECT_EQ(again.status, 0);
  EXPECT_EQ(again.through_hostpeer, 1u);
  EXPECT_TRUE(log.wait_all_seen(2, std::chrono::seconds(10)));
  EXPECT_EQ(hostpeer->stats().ring_grants, 1u);
}

// When either side of a ring channel goes, hostpeer closes it: the
// survivor's rings go through hostpeer again (and get its answer), and
// hostpeer holds no channel any more.
TEST(DoorbellFastPath, ChannelsCloseWhenEitherSideGoes) {
  EmbeddedHostpeer hostpeer;
  std::string error;
  RingLog log;
  int status;
  // The owner: a host connection in this process; the ringer: a guest in another.
  auto owner = guest::Driver::connect(
      {.socket_path = hostpeer.socket_path(), .role = proto::Role::kHost}, &status, &error);
  ASSERT_TRUE(owner) << error;
  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(owner->doorbell_create(&bell, 0, 0, log.callback(0)), VMCI_SUCCESS);
  {
    Peer ringer;
    ASSERT_EQ(ringer.call("connect " + hostpeer.socket_path() + " guest").rfind("0 ", 0), 0u);
    ASSERT_EQ(ring_storm(ringer, 1, 3, bell).status, 0);
    ASSERT_TRUE(log.wait_all_seen(1, std::chrono::seconds(10)));
    EXPECT_EQ(hostpeer->stats().ring_channels, 1u);
    ringer.process().signal(SIGKILL);
    ringer.process().wait(10000);
  }
  for (int i = 0; i < 200 && hostpeer->stats().ring_channels != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(hostpeer->stats().ring_channels, 0u);

  // Now the owner goes while a ringer holds a slot of its doorbell.
  Peer ringer;
  ASSERT_EQ(ringer.call("connect " + hostpeer.socket_path() + " guest").rfind("0 ", 0), 0u);
  ASSERT_EQ(ring_storm(ringer, 1, 3, bell).status, 0);
  EXPECT_EQ(hostpeer->stats().ring_channels, 1u);
  owner.reset();
  for (int i = 0; i < 200 && hostpeer->stats().ring_channels != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(hostpeer->stats().ring_channels, 0u);
  const Storm after = ring_storm(ringer, 1, 1, bell);
  EXPECT_EQ(after.status, VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(after.through_hostpeer, 1u);
}

// When hostpeer dies, a ring channel would still carry rings between two
// live endpoints; but a notify needs hostpeer, as every call does, and
// fails at once with UNAVAILABLE.
TEST(DoorbellFastPath, WhenHostpeerDiesANotifyFailsThoughTheChannelIsStillMapped) {
  Daemon daemon;
  int status;
  std::string error;
  RingLog log;
  auto owner = guest::Driver::connect(
      {.socket_path = daemon.socket_path(), .role = proto::Role::kHost}, &status, &error);
  ASSERT_TRUE(owner) << error;
  auto ringer = guest::Driver::connect({.socket_path = daemon.socket_path()}, &status, &error);
  ASSERT_TRUE(ringer) << error;
  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(owner->doorbell_create(&bell, 0, 0, log.callback(0)), VMCI_SUCCESS);
  ASSERT_EQ(ringer->doorbell_notify(bell, 0), VMCI_SUCCESS);
  ASSERT_EQ(ringer->doorbell_notify(bell, 0), VMCI_SUCCESS);
  EXPECT_EQ(ringer->ring_counts().through_hostpeer, 1u);  // the second went through the channel
  daemon.process().signal(SIGKILL);
  daemon.process().wait(10000);
  for (int i = 0; i < 500 && ringer->connected(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(ringer->connected());
  EXPECT_EQ(ringer->doorbell_notify(bell, 0), VMCI_ERROR_UNAVAILABLE);
}

// hold_callbacks' promise across a ring channel's grant: a host
// connection's first ring of a new doorbell goes through hostpeer, which
// grants the ringer a slot and tells the owner by a frame; the next rings
// go into the slot.
// However soon the owner releases after them, it has taken in the grant:
// ten rings held are one callback, never one for the ring hostpeer passed
// and another for the slot's.
TEST(DoorbellFastPath, RingsHeldAcrossAGrantAreOneCallbackAtTheRelease) {
  EmbeddedHostpeer hostpeer;
  RingLog log;
  auto owner = connect(hostpeer.socket_path(), proto::Role::kGuest);
  ASSERT_TRUE(owner);
  auto host = connect(hostpeer.socket_path(), proto::Role::kHost);
  ASSERT_TRUE(host);
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    vmci_handle bell = VMCI_INVALID_HANDLE;  // a new doorbell: a new slot to grant
    ASSERT_EQ(owner->doorbell_create(&bell, 0, 0, log.callback(round)), VMCI_SUCCESS);
    owner->hold_callbacks();
    for (int ring = 0; ring < 10; ++ring) ASSERT_EQ(host->doorbell_notify(bell, 0), VMCI_SUCCESS);
    owner->release_callbacks();
    ASSERT_TRUE(log.wait_all_seen(round + 1, std::chrono::seconds(10)));
    // A second callback would follow within the grant's scan.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(log.count(round), 1);
    ASSERT_EQ(owner->doorbell_destroy(bell), VMCI_SUCCESS);
  }
  EXPECT_EQ(host->ring_counts().through_hostpeer, 0u + kRounds);
}

}  // namespace
}  // namespace vmci::testing
