#include "delivery_queue.h"

namespace vmci::guest::internal {

DeliveryQueue::DeliveryQueue(std::function<void(Delivery&)> handler)
    : handler_(std::move(handler)) {
  thread_ = std::thread([this] { run(); });
}

DeliveryQueue::~DeliveryQueue() { stop(); }

void DeliveryQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DeliveryQueue::push(Delivery delivery) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back(std::move(delivery));
  }
  changed_.notify_all();
}

void DeliveryQueue::hold() {
  std::lock_guard lock(mutex_);
  held_ = true;
}

void DeliveryQueue::release() {
  {
    std::lock_guard lock(mutex_);
    held_ = false;
  }
  changed_.notify_all();
}

bool DeliveryQueue::on_delivery_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void DeliveryQueue::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (!held_ && !queue_.empty()); });
    if (stopping_) return;
    Delivery delivery = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    handler_(delivery);
    lock.lock();
  }
}

}  // namespace vmci::guest::internal
