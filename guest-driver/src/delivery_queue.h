// delivery_queue.h: the driver's delivery thread. Items are handled one at a
// time, in arrival order, with no lock held; hold() parks them until
// release().
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vmci::guest::internal {

struct Delivery {
  uint32_t id;
  std::vector<uint8_t> datagram;
};

class DeliveryQueue {
 public:
  explicit DeliveryQueue(std::function<void(Delivery&)> handler);
  ~DeliveryQueue();

  // Handles nothing more: the item being handled finishes first, later
  // pushes are dropped. Must not be called from the delivery thread.
  void stop();
  void push(Delivery delivery);
  void hold();
  void release();
  // True on the delivery thread (inside a handler).
  bool on_delivery_thread() const;

 private:
  void run();

  std::function<void(Delivery&)> handler_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Delivery> queue_;
  bool held_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vmci::guest::internal
