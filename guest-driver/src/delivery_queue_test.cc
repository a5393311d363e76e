#include "delivery_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace vmci::guest::internal {
namespace {

class Recorder {
 public:
  void record(uint32_t id) {
    std::lock_guard lock(mutex_);
    ids_.push_back(id);
    changed_.notify_all();
  }
  std::vector<uint32_t> wait_for(size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(5), [&] { return ids_.size() >= count; });
    return ids_;
  }
  std::vector<uint32_t> now() {
    std::lock_guard lock(mutex_);
    return ids_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<uint32_t> ids_;
};

TEST(DeliveryQueue, HandlesInArrivalOrder) {
  Recorder recorder;
  DeliveryQueue queue([&](Delivery& d) { recorder.record(d.id); });
  for (uint32_t i = 1; i <= 5; ++i) queue.push(Delivery{i, {}});
  EXPECT_EQ(recorder.wait_for(5), (std::vector<uint32_t>{1, 2, 3, 4, 5}));
}

TEST(DeliveryQueue, HoldParksDeliveriesUntilRelease) {
  Recorder recorder;
  DeliveryQueue queue([&](Delivery& d) { recorder.record(d.id); });
  queue.hold();
  queue.push(Delivery{1, {}});
  queue.push(Delivery{2, {}});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(recorder.now().empty());
  queue.release();
  EXPECT_EQ(recorder.wait_for(2), (std::vector<uint32_t>{1, 2}));
}

TEST(DeliveryQueue, KnowsItsOwnThread) {
  Recorder recorder;
  DeliveryQueue* self = nullptr;
  DeliveryQueue queue([&](Delivery&) { recorder.record(self->on_delivery_thread() ? 1 : 0); });
  self = &queue;
  EXPECT_FALSE(queue.on_delivery_thread());
  queue.push(Delivery{9, {}});
  EXPECT_EQ(recorder.wait_for(1), (std::vector<uint32_t>{1}));
}

}  // namespace
}  // namespace vmci::guest::internal

namespace vmci::guest::internal {
namespace {

TEST(DeliveryQueue, StopFinishesTheRunningItemAndDropsLaterOnes) {
  Recorder recorder;
  std::atomic<bool> in_handler{false};
  DeliveryQueue queue([&](Delivery& d) {
    in_handler = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    recorder.record(d.id);
  });
  queue.push(Delivery{1, {}});
  while (!in_handler) std::this_thread::yield();
  queue.stop();
  EXPECT_EQ(recorder.now(), (std::vector<uint32_t>{1}));
  queue.push(Delivery{2, {}});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(recorder.now(), (std::vector<uint32_t>{1}));
}

}  // namespace
}  // namespace vmci::guest::internal
