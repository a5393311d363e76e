// QueuePair::wait and vmci_qpair_wait, our extension: data arrives, room
// frees, the timeout passes, the peer detaches or dies, each seen promptly.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/vmci_hostpeer.h"

namespace vmci::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Wait = QueuePair::Wait;

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
}

// A guest (its own Driver) and an embedded host endpoint sharing a pair of
// 4 KiB queues.
class QueuePairWait : public ::testing::Test {
 protected:
  void SetUp() override {
    guest_ = connect(hostpeer_.socket_path(), Role::kGuest);
    ASSERT_TRUE(guest_);
    host_ = hostpeer_->connect_host();
    vmci_handle handle = VMCI_INVALID_HANDLE;
    ASSERT_GE(guest_->qpair_alloc(&guest_qp_, &handle, 4096, 4096, VMCI_HOST_CONTEXT_ID, 0, 0),
              VMCI_SUCCESS);
    ASSERT_GE(host_->qpair_alloc(&host_qp_, &handle, 4096, 4096, guest_->get_context_id(), 0, 0),
              VMCI_SUCCESS);
  }
  void TearDown() override {
    if (host_qp_) host_->qpair_detach(&host_qp_);
    if (guest_qp_) guest_->qpair_detach(&guest_qp_);
  }

  EmbeddedHostpeer hostpeer_;
  std::unique_ptr<guest::Driver> guest_;
  std::unique_ptr<Endpoint> host_;
  std::unique_ptr<QueuePair> guest_qp_, host_qp_;
};

TEST_F(QueuePairWait, ReturnsWhenDataArrives) {
  const auto start = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return guest_qp_->wait(Wait::kData, milliseconds(5000)); });
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_EQ(host_qp_->enqueue("hello", 5), 5);
  EXPECT_EQ(waiting.get(), 5);
  EXPECT_LT(ms_since(start), 1000);
}

TEST_F(QueuePairWait, ReturnsAtOnceWhenDataIsThere) {
  ASSERT_EQ(guest_qp_->enqueue("abc", 3), 3);
  EXPECT_EQ(host_qp_->wait(Wait::kData, milliseconds(0)), 3);
  EXPECT_EQ(host_qp_->wait(Wait::kSpace, milliseconds(0)), 4095);
}

TEST_F(QueuePairWait, ReturnsTheTimeoutStatusWhenNothingComes) {
  const auto start = Clock::now();
  EXPECT_EQ(guest_qp_->wait(Wait::kData, milliseconds(150)), VMCI_ERROR_TIMEOUT);
  EXPECT_GE(ms_since(start), 150);
  EXPECT_LT(ms_since(start), 1000);
}

TEST_F(QueuePairWait, ReturnsWhenRoomFrees) {
  std::vector<uint8_t> block(4095, 7);  // a 4096-byte queue holds 4095
  ASSERT_EQ(host_qp_->enqueue(block.data(), block.size()), 4095);
  EXPECT_EQ(host_qp_->wait(Wait::kSpace, milliseconds(0)), VMCI_ERROR_TIMEOUT);
  const auto start = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return host_qp_->wait(Wait::kSpace, milliseconds(5000)); });
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_EQ(guest_qp_->dequeue(block.data(), 100), 100);
  EXPECT_EQ(waiting.get(), 100);
  EXPECT_LT(ms_since(start), 1000);
}

TEST_F(QueuePairWait, ReturnsPromptlyWhenThePeerDetaches) {
  const auto start = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return guest_qp_->wait(Wait::kData, milliseconds(10000)); });
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_GE(host_->qpair_detach(&host_qp_), VMCI_SUCCESS);
  EXPECT_EQ(waiting.get(), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_LT(ms_since(start), 2000);
}

TEST_F(QueuePairWait, AHostReturnsPromptlyWhenItsGuestDies) {
  const auto start = Clock::now();
  auto waiting = std::async(std::launch::async, [&] { return host_qp_->wait(Wait::kData, milliseconds(10000)); });
  std::this_thread::sleep_for(milliseconds(50));
  guest_->abort();
  EXPECT_EQ(waiting.get(), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_LT(ms_since(start), 2000);
}

TEST_F(QueuePairWait, DataLeftWhenThePeerDetachedIsStillReported) {
  ASSERT_EQ(host_qp_->enqueue("last", 4), 4);
  ASSERT_GE(host_->qpair_detach(&host_qp_), VMCI_SUCCESS);
  EXPECT_EQ(guest_qp_->wait(Wait::kData, milliseconds(1000)), 4);
}

TEST(QueuePairWaitC, RefusesBadArguments) {
  EXPECT_EQ(vmci_qpair_wait(nullptr, VMCI_QPAIR_WAIT_DATA, 0), VMCI_ERROR_INVALID_ARGS);
}

}  // namespace
}  // namespace vmci::testing
