// delivery_acknowledger.h: where the delivery thread acknowledges the
// deliveries of one connection (Connection::acknowledge). A connection's
// first deliveries can reach the delivery thread before open() has handed
// the connection over (a reconnect does not hold deliveries back): what is
// acknowledged until bind() waits here, in order, and goes out then. The
// deliveries of a connection that was replaced stay acknowledged to it,
// never to its successor, whose ids and count start anew.
//
//   auto acks = std::make_shared<DeliveryAcknowledger>();  // before open()
//   ... delivery thread: acks->acknowledge(id);
//   acks->bind(connection);                                // after open()
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace vmci::guest::internal {

class Connection;

class DeliveryAcknowledger {
 public:
  // The connection; what waited is acknowledged to it now, in order.
  void bind(const std::shared_ptr<Connection>& connection);
  void acknowledge(uint32_t delivery_id);

 private:
  std::mutex mutex_;  // serialises Connection::acknowledge calls, as it asks
  std::weak_ptr<Connection> connection_;
  bool bound_ = false;
  std::vector<uint32_t> waiting_;
};

}  // namespace vmci::guest::internal
