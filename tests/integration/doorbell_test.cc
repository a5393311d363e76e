// Doorbells across processes and threads: every doorbell rung from many
// threads of another process is seen; indexes shared beyond 4096 doorbells
// ring every doorbell on them (item 27).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
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
  TempDir dir;
  host::Options options;
  options.socket_path = dir.path() + "/hostpeer.sock";
  std::string error;
  auto hostpeer = host::HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer) << error;
  RingLog log;  // before the endpoint: it outlives every callback
  auto host = hostpeer->connect_host();
  constexpr int kDoorbells = 200;
  std::vector<vmci_handle> handles(kDoorbells, VMCI_INVALID_HANDLE);
  for (int i = 0; i < kDoorbells; ++i) {
    ASSERT_EQ(host->doorbell_create(&handles[i], 0, 0, log.callback(i)), VMCI_SUCCESS);
  }
  // The other process: 8 threads, each ringing every doorbell 5 times.
  Peer guest;
  ASSERT_EQ(guest.call("connect " + options.socket_path + " guest").rfind("0 ", 0), 0u);
  std::string targets;
  for (const auto& h : handles) {
    targets += " " + std::to_string(h.context) + ":" + std::to_string(h.resource);
  }
  EXPECT_EQ(guest.call("ring-storm 8 5" + targets, 60000), "0");
  EXPECT_TRUE(log.wait_all_seen(kDoorbells, std::chrono::seconds(30)));
  for (int i = 0; i < kDoorbells; ++i) EXPECT_LE(log.count(i), 8 * 5) << i;
  EXPECT_GE(hostpeer->stats().doorbells_rung, uint64_t{kDoorbells} * 8 * 5);
}

// A ring that comes before the driver's waiter thread has even started
// must not be lost (it once was: the thread read the sequence late).
TEST(Doorbells, ARingRightAfterConnectingIsNotLost) {
  TempDir dir;
  host::Options options;
  options.socket_path = dir.path() + "/hostpeer.sock";
  std::string error;
  auto hostpeer = host::HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer) << error;
  auto host = hostpeer->connect_host();
  for (int round = 0; round < 100; ++round) {
    RingLog log;
    int status;
    auto guest = guest::Driver::connect({.socket_path = options.socket_path}, &status, &error);
    ASSERT_TRUE(guest) << error;
    vmci_handle bell = VMCI_INVALID_HANDLE;
    ASSERT_EQ(guest->doorbell_create(&bell, 0, 0, log.callback(0)), VMCI_SUCCESS);
    ASSERT_EQ(host->doorbell_notify(bell, 0), VMCI_SUCCESS);
    ASSERT_TRUE(log.wait_all_seen(1, std::chrono::seconds(5))) << "round " << round;
    guest.reset();  // before the log it calls
  }
}

TEST(Doorbells, Item27_BeyondTheBitmapIndexesAreSharedAndEveryDoorbellOnOneFires) {
  TempDir dir;
  host::Options options;
  options.socket_path = dir.path() + "/hostpeer.sock";
  options.limits.max_doorbells_per_context = 5000;
  std::string error;
  auto hostpeer = host::HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer) << error;
  RingLog log;
  int status;
  auto guest = guest::Driver::connect({.socket_path = options.socket_path}, &status, &error);
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
