#include "delivery_acknowledger.h"

#include "connection.h"

namespace vmci::guest::internal {

void DeliveryAcknowledger::bind(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  connection_ = connection;
  bound_ = true;
  for (uint32_t id : waiting_) connection->acknowledge(id);
  waiting_.clear();
}

void DeliveryAcknowledger::acknowledge(uint32_t delivery_id) {
  std::lock_guard lock(mutex_);
  if (!bound_) {
    waiting_.push_back(delivery_id);
    return;
  }
  if (const auto connection = connection_.lock()) connection->acknowledge(delivery_id);
}

}  // namespace vmci::guest::internal
