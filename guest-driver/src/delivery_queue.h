// delivery_queue.h: the driver's delivery thread. It sleeps in an
// EndpointInbox (vmci/proto/endpoint_inbox.h) and handles one thing at a
// time, with no lock held: queued deliveries (and actions) in arrival
// order, and a scan (doorbells, datagram lanes) whenever a watched ring
// word moved. hold() parks both
// until release().
#pragma once

#include <functional>
#include <thread>

#include "vmci/proto/endpoint_inbox.h"

namespace vmci::guest::internal {

using Delivery = proto::EndpointInbox::Delivery;

class DeliveryQueue {
 public:
  // `scan` looks for rung doorbells and runs their callbacks (none: no scans).
  explicit DeliveryQueue(std::function<void(Delivery&)> handler, std::function<void()> scan = {});
  ~DeliveryQueue();

  // Handles nothing more: the item being handled finishes first, later
  // pushes are dropped. Must not be called from the delivery thread.
  void stop();
  void push(Delivery delivery);
  void hold();
  void release();
  // True on the delivery thread (inside a handler).
  bool on_delivery_thread() const;
  // The ring words the thread sleeps on (watch, unwatch, rescan).
  proto::EndpointInbox& inbox() { return inbox_; }

 private:
  void run();

  std::function<void(Delivery&)> handler_;
  std::function<void()> scan_;
  proto::EndpointInbox inbox_;
  std::thread thread_;
};

}  // namespace vmci::guest::internal
