// Quotas across real connections to the daemon: one greedy guest takes all
// it may of everything hostpeer bounds for a context, and storms datagrams
// and doorbell rings at the host, while another guest keeps working.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/queue_pair.h"

namespace vmci::testing {
namespace {

using std::chrono::seconds;

// What the host received, by sending context.
class HostInbox {
 public:
  DatagramCallback callback() {
    return [this](vmci_datagram* dg) {
      std::lock_guard lock(mutex_);
      ++datagrams_[dg->src.context];
      changed_.notify_all();
      return 0;
    };
  }
  bool wait_for(vmci_id from, uint64_t n, seconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return datagrams_[from] >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<vmci_id, uint64_t> datagrams_;
};

TEST(Quotas, AGreedyGuestGetsNoResourcesAndAnotherGuestKeepsWorking) {
  Daemon daemon({"--max-queue-pairs-per-context", "4", "--max-doorbells-per-context", "8"});
  HostInbox inbox;
  auto host = connect(daemon.socket_path(), proto::Role::kHost);
  ASSERT_TRUE(host);
  vmci_handle sink = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, inbox.callback(), &sink),
            VMCI_SUCCESS);
  std::atomic<uint64_t> host_rings{0};
  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0, [&] { ++host_rings; }), VMCI_SUCCESS);

  // The greedy guest takes every queue pair and doorbell it may have...
  auto greedy = connect(daemon.socket_path(), proto::Role::kGuest);
  ASSERT_TRUE(greedy);
  std::vector<std::unique_ptr<QueuePair>> pairs;
  for (;;) {
    std::unique_ptr<QueuePair> qp;
    vmci_handle h = VMCI_INVALID_HANDLE;
    const int status =
        greedy->qpair_alloc(&qp, &h, 65536, 65536, VMCI_HOST_CONTEXT_ID, 0, 0);
    if (status == VMCI_ERROR_NO_RESOURCES) break;
    ASSERT_EQ(status, VMCI_SUCCESS);
    pairs.push_back(std::move(qp));
    ASSERT_LE(pairs.size(), 4u);
  }
  EXPECT_EQ(pairs.size(), 4u);
  int doorbells = 0;
  for (;; ++doorbells) {
    vmci_handle h = VMCI_INVALID_HANDLE;
    const int status = greedy->doorbell_create(&h, 0, 0, [] {});
    if (status == VMCI_ERROR_NO_RESOURCES) break;
    ASSERT_EQ(status, VMCI_SUCCESS);
    ASSERT_LE(doorbells, 8);
  }
  EXPECT_EQ(doorbells, 8);

  // ...then storms the host with datagrams and rings until told to stop.
  vmci_handle greedy_src = VMCI_INVALID_HANDLE;
  ASSERT_EQ(greedy->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                           &greedy_src),
            VMCI_SUCCESS);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> greedy_sent{0}, greedy_refused{0};
  std::thread storm([&] {
    std::vector<uint8_t> buf(sizeof(vmci_datagram) + 4096);
    auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
    dg->dst = sink;
    dg->src = greedy_src;
    dg->payload_size = 4096;
    while (!stop) {
      const int result = greedy->datagram_send(dg);
      if (result == VMCI_ERROR_NO_RESOURCES) {
        ++greedy_refused;
      } else if (result > 0) {
        ++greedy_sent;
      }
      greedy->doorbell_notify(bell, 0);
    }
  });

  // The storm is under way (on a loaded machine its thread may start late,
  // and the other guest's work must happen during it)...
  for (int i = 0; i < 10000 && greedy_sent.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (greedy_sent.load() == 0) {
    stop = true;
    storm.join();
    FAIL() << "the greedy guest sent nothing in 10 s (" << greedy_refused << " refused)";
  }

  // ...and the other guest is refused nothing and waits for nothing.
  auto polite = connect(daemon.socket_path(), proto::Role::kGuest);
  ASSERT_TRUE(polite);
  const vmci_id polite_cid = polite->get_context_id();
  std::unique_ptr<QueuePair> polite_pair;
  vmci_handle polite_handle = VMCI_INVALID_HANDLE;
  EXPECT_EQ(polite->qpair_alloc(&polite_pair, &polite_handle, 65536, 65536, VMCI_HOST_CONTEXT_ID,
                                0, 0),
            VMCI_SUCCESS);
  vmci_handle polite_bell = VMCI_INVALID_HANDLE;
  EXPECT_EQ(polite->doorbell_create(&polite_bell, 0, 0, [] {}), VMCI_SUCCESS);
  vmci_handle polite_src = VMCI_INVALID_HANDLE;
  ASSERT_EQ(polite->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                           &polite_src),
            VMCI_SUCCESS);
  std::vector<uint8_t> buf(sizeof(vmci_datagram) + 64);
  auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
  dg->dst = sink;
  dg->src = polite_src;
  dg->payload_size = 64;
  constexpr int kPolite = 200;
  for (int i = 0; i < kPolite; ++i) {
    ASSERT_EQ(polite->datagram_send(dg), 88) << i;  // its own room: never NO_RESOURCES
  }
  EXPECT_EQ(polite->doorbell_notify(bell, 0), VMCI_SUCCESS);
  EXPECT_TRUE(inbox.wait_for(polite_cid, kPolite, seconds(10)));
  stop = true;
  storm.join();
  EXPECT_GT(host_rings.load(), 0u);

  // When the greedy guest goes, all it held goes with it.
  pairs.clear();
  greedy.reset();
  EXPECT_EQ(polite->qpair_detach(&polite_pair), VMCI_SUCCESS);
  polite.reset();
  proto::StatsBody stats{};
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(host->hostpeer_stats(&stats), VMCI_SUCCESS);
    if (stats.guest_contexts == 0 && stats.queue_pairs == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stats.guest_contexts, 0u);
  EXPECT_EQ(stats.queue_pairs, 0u);
  EXPECT_EQ(stats.doorbells, 1u);  // the host's own
  EXPECT_EQ(stats.ring_channels, 0u);
}

}  // namespace
}  // namespace vmci::testing
