// Queue pairs across processes: randomized streams checked byte for byte,
// endpoints SIGKILLed mid-transfer, hostpeer killed under live pairs; and
// nothing of any of it left in /dev/shm.
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "processes.h"
#include "stream_check.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace vmci::testing {
namespace {

using guest::Driver;

std::set<std::string> shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    names.insert(entry.path().filename());
  }
  return names;
}


std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

// vmci-qp-stream-peer in its own process.
std::unique_ptr<ChildProcess> stream_peer(const std::string& socket, const std::string& role,
                                          const std::string& handle, uint64_t produce,
                                          uint64_t consume, const std::string& mode, uint64_t seed,
                                          const std::string& length) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{VMCI_QP_STREAM_PEER_BIN, socket, role, handle,
                               std::to_string(produce), std::to_string(consume), mode,
                               std::to_string(seed), length},
      ChildOptions::with_pipes());
}

// Events of one kind that reached an endpoint, waited for with a timeout.
class EventLog {
 public:
  EventCallback callback() {
    return [this](vmci_id, vmci_event_data* ed) {
      const auto* payload = reinterpret_cast<const vmci_event_payload_qp*>(ed + 1);
      std::lock_guard lock(mutex_);
      events_.push_back({ed->event, payload->handle, payload->peer_id});
      arrived_.notify_all();
    };
  }
  struct Event {
    uint32_t event;
    vmci_handle handle;
    vmci_id peer_id;
  };
  std::optional<Event> next(int timeout_ms) {
    std::unique_lock lock(mutex_);
    if (!arrived_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return taken_ < events_.size(); })) {
      return std::nullopt;
    }
    return events_[taken_++];
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Event> events_;
  size_t taken_ = 0;
};

constexpr std::chrono::seconds kStreamLimit{60};

TEST(QueuePairs, RandomizedStreamsAcrossProcessesCheckedByteForByte) {
  const auto shm_before = shm_entries();
  Daemon daemon;
  auto host = connect(daemon.socket_path(), proto::Role::kHost);
  ASSERT_TRUE(host);
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  constexpr uint64_t kLength = 6 * 1024 * 1024;
  for (int round = 0; round < 6; ++round) {
    // Sizes that are rarely page multiples, so the ring wraps at odd places.
    const uint64_t produce = 1 + rng() % (256 * 1024);
    const uint64_t consume = 1 + rng() % (256 * 1024);
    SCOPED_TRACE("round " + std::to_string(round) + ": host produce " + std::to_string(produce) +
                 ", consume " + std::to_string(consume));
    std::unique_ptr<QueuePair> qp;
    vmci_handle handle = VMCI_INVALID_HANDLE;
    ASSERT_EQ(host->qpair_alloc(&qp, &handle, produce, consume, VMCI_INVALID_ID, 0, 0),
              VMCI_SUCCESS);
    const bool guest_writes = round % 2 == 0;
    const uint64_t stream_seed = rng();
    auto guest = stream_peer(daemon.socket_path(), "guest", handle_text(handle), consume, produce,
                             guest_writes ? "write" : "read", stream_seed,
                             std::to_string(kLength));
    ASSERT_EQ(guest->read_line(10000), "ready " + handle_text(handle));
    const StreamOutcome moved =
        guest_writes ? read_stream(*qp, stream_seed, kLength, rng(), kStreamLimit)
                     : write_stream(*qp, stream_seed, kLength, rng(), kStreamLimit);
    ASSERT_TRUE(moved.ok()) << moved.error;
    EXPECT_EQ(guest->read_line(60000), "done " + std::to_string(kLength));
    EXPECT_EQ(guest->wait(10000), 0);
    EXPECT_EQ(host->qpair_detach(&qp), VMCI_SUCCESS);
  }
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_EQ(shm_entries(), shm_before);
}

// hostpeer embedded in this process (as a device proxy runs it), so that
// its counts can be read; the other endpoints are separate processes.
class QueuePairsWithEmbeddedHostpeer : public ::testing::Test {
 protected:
  void SetUp() override {
    shm_before_ = shm_entries();
    host::Options options;
    options.socket_path = dir_.path() + "/hostpeer.sock";
    std::string error;
    hostpeer_ = host::HostPeer::start(options, &error);
    ASSERT_TRUE(hostpeer_) << error;
  }
  void TearDown() override { EXPECT_EQ(shm_entries(), shm_before_); }

  // Waits until hostpeer holds no queue pair and no guest.
  bool hostpeer_holds_nothing() {
    for (int i = 0; i < 500; ++i) {
      const host::Stats s = hostpeer_->stats();
      if (s.queue_pairs == 0 && s.queue_pair_bytes == 0 && s.guest_contexts == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir dir_;
  std::set<std::string> shm_before_;
  std::unique_ptr<host::HostPeer> hostpeer_;
};

TEST_F(QueuePairsWithEmbeddedHostpeer, GuestKilledMidTransfer_HostGetsPeerDetachAndThePairIsFreed) {
  EventLog detaches;  // before the endpoint: it outlives every callback
  auto host = hostpeer_->connect_host();
  vmci_id sub;
  ASSERT_EQ(host->event_subscribe(VMCI_EVENT_QP_PEER_DETACH, detaches.callback(), &sub),
            VMCI_SUCCESS);
  std::unique_ptr<QueuePair> qp;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->qpair_alloc(&qp, &handle, 65536, 65536, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  auto guest = stream_peer(hostpeer_->socket_path(), "guest", handle_text(handle), 65536, 65536,
                           "write", 7, "forever");
  ASSERT_EQ(guest->read_line(10000), "ready " + handle_text(handle));
  const StreamOutcome before_kill = read_stream(*qp, 7, 2 * 1024 * 1024, 1, kStreamLimit);
  ASSERT_TRUE(before_kill.ok()) << before_kill.error;
  guest->signal(SIGKILL);
  guest->wait(10000);

  const auto event = detaches.next(5000);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->handle.resource, handle.resource);
  EXPECT_NE(event->peer_id, VMCI_HOST_CONTEXT_ID);
  uint8_t byte = 0;
  EXPECT_EQ(qp->enqueue(&byte, 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(host->qpair_detach(&qp), VMCI_SUCCESS);
  EXPECT_TRUE(hostpeer_holds_nothing());

  // hostpeer serves on: a new guest streams through a new pair.
  ASSERT_EQ(host->qpair_alloc(&qp, &(handle = VMCI_INVALID_HANDLE), 4096, 4096, VMCI_INVALID_ID, 0,
                              0),
            VMCI_SUCCESS);
  auto next = stream_peer(hostpeer_->socket_path(), "guest", handle_text(handle), 4096, 4096,
                          "write", 8, "100000");
  ASSERT_EQ(next->read_line(10000), "ready " + handle_text(handle));
  const StreamOutcome after = read_stream(*qp, 8, 100000, 2, kStreamLimit);
  EXPECT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(next->read_line(10000), "done 100000");
  EXPECT_EQ(next->wait(10000), 0);
  EXPECT_EQ(host->qpair_detach(&qp), VMCI_SUCCESS);
  EXPECT_TRUE(hostpeer_holds_nothing());
}

TEST_F(QueuePairsWithEmbeddedHostpeer, HostKilledMidTransfer_GuestGetsPeerDetachAndKeepsItsMemory) {
  EventLog detaches;  // before the endpoint: it outlives every callback
  auto guest = connect(hostpeer_->socket_path(), proto::Role::kGuest);
  ASSERT_TRUE(guest);
  vmci_id sub;
  ASSERT_EQ(guest->event_subscribe(VMCI_EVENT_QP_PEER_DETACH, detaches.callback(), &sub),
            VMCI_SUCCESS);
  auto host = stream_peer(hostpeer_->socket_path(), "host", "new", 32768, 32768, "write", 9,
                          "forever");
  const std::string ready = host->read_line(10000);
  ASSERT_EQ(ready.rfind("ready 2:", 0), 0u) << ready;
  const auto colon = ready.find(':');
  const vmci_handle h =
      VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, static_cast<vmci_id>(std::stoul(ready.substr(colon + 1))));
  std::unique_ptr<QueuePair> qp;
  vmci_handle attach = h;
  ASSERT_EQ(guest->qpair_alloc(&qp, &attach, 32768, 32768, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  const StreamOutcome before_kill = read_stream(*qp, 9, 1024 * 1024, 3, kStreamLimit);
  ASSERT_TRUE(before_kill.ok()) << before_kill.error;
  host->signal(SIGKILL);
  host->wait(10000);

  const auto event = detaches.next(5000);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->handle.resource, h.resource);
  EXPECT_EQ(event->peer_id, VMCI_HOST_CONTEXT_ID);
  // A guest's memory stays mapped: it enqueues until the ring is full.
  std::vector<uint8_t> fill(40000, 0xab);
  EXPECT_EQ(qp->enqueue(fill.data(), fill.size()), 32767);  // the host never read
  EXPECT_EQ(guest->qpair_detach(&qp), VMCI_SUCCESS);
  guest.reset();
  EXPECT_TRUE(hostpeer_holds_nothing());
}

TEST(QueuePairs, HostpeerKilled_DataCallsGoOnDetachFailsAndKeepsTheEntry_Items17And18) {
  const auto shm_before = shm_entries();
  Daemon daemon;
  auto guest = connect(daemon.socket_path(), proto::Role::kGuest);
  ASSERT_TRUE(guest);
  std::unique_ptr<QueuePair> qp;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(guest->qpair_alloc(&qp, &handle, 4096, 4096, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  daemon.process().signal(SIGKILL);
  daemon.process().wait(10000);
  for (int i = 0; i < 500 && guest->connected(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(guest->connected());

  // Memory already mapped behaves as after the peer detached (design decision 7).
  EXPECT_EQ(qp->enqueue("abc", 3), 3);
  // Item 17: the object goes whatever the result; item 18: the failed
  // detach keeps the entry, so the handle is still this context's.
  EXPECT_EQ(guest->qpair_detach(&qp), VMCI_ERROR_UNAVAILABLE);
  EXPECT_EQ(qp, nullptr);
  vmci_handle again = handle;
  EXPECT_EQ(guest->qpair_alloc(&qp, &again, 4096, 4096, VMCI_INVALID_ID, 0, 0),
            VMCI_ERROR_ALREADY_EXISTS);
  // A call that needs hostpeer fails at once.
  vmci_handle fresh = VMCI_INVALID_HANDLE;
  EXPECT_EQ(guest->qpair_alloc(&qp, &fresh, 4096, 4096, VMCI_INVALID_ID, 0, 0),
            VMCI_ERROR_UNAVAILABLE);
  // A local pair needs no hostpeer.
  fresh = VMCI_INVALID_HANDLE;
  EXPECT_EQ(guest->qpair_alloc(&qp, &fresh, 4096, 4096, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0),
            VMCI_SUCCESS);
  EXPECT_EQ(guest->qpair_detach(&qp), VMCI_SUCCESS);
  guest.reset();
  EXPECT_EQ(shm_entries(), shm_before);
}

}  // namespace
}  // namespace vmci::testing
