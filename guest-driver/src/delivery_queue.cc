#include "delivery_queue.h"

namespace vmci::guest::internal {

DeliveryQueue::DeliveryQueue(std::function<void(Delivery&)> handler, std::function<void()> scan)
    : handler_(std::move(handler)), scan_(std::move(scan)) {
  thread_ = std::thread([this] { run(); });
}

DeliveryQueue::~DeliveryQueue() { stop(); }

void DeliveryQueue::stop() {
  inbox_.stop();
  if (thread_.joinable()) thread_.join();
}

void DeliveryQueue::push(Delivery delivery) { inbox_.push(std::move(delivery)); }

void DeliveryQueue::hold() { inbox_.hold(); }

void DeliveryQueue::release() { inbox_.release(); }

bool DeliveryQueue::on_delivery_thread() const {
  return std::this_thread::get_id() == thread_.get_id();
}

void DeliveryQueue::run() {
  for (;;) {
    proto::EndpointInbox::Next next = inbox_.next();
    switch (next.kind) {
      case proto::EndpointInbox::Kind::kStopped:
        return;
      case proto::EndpointInbox::Kind::kScan:
        if (scan_) scan_();
        break;
      case proto::EndpointInbox::Kind::kAction:
        next.action();
        break;
      case proto::EndpointInbox::Kind::kDelivery:
        handler_(next.delivery);
        break;
    }
  }
}

}  // namespace vmci::guest::internal
