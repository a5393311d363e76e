#include "vmci/proto/queue_pair_mapping.h"

#include <utility>

#include "vmci/proto/queue.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::proto {

std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle, int queue_fd, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error) {
  const bool host = status_fd >= 0;
  // hostpeer lays the pair out in the guest's view.
  const uint64_t guest_produce = host ? consume_size : produce_size;
  const uint64_t guest_consume = host ? produce_size : consume_size;
  const QueuePairLayout layout = queue_pair_layout(guest_produce, guest_consume);
  auto queues = SharedMemory::map_fd(queue_fd, layout.total, error);
  if (!queues) return nullptr;
  if (!host) {
    const QueuePairView view = creator_view(queues->data(), guest_produce, guest_consume);
    return std::make_unique<QueuePair>(handle, view, std::move(queues));
  }
  auto status = SharedMemory::map_fd(status_fd, kQueuePairStatusSize, error);
  if (!status) return nullptr;
  const QueuePairView view = attacher_view(queues->data(), guest_produce, guest_consume);
  const auto* attached = &reinterpret_cast<const QueuePairStatus*>(status->data())->peer_attached;
  auto both = std::make_shared<std::pair<std::shared_ptr<SharedMemory>, std::shared_ptr<SharedMemory>>>(
      std::move(queues), std::move(status));
  return std::make_unique<QueuePair>(handle, view, std::move(both), attached);
}

}  // namespace vmci::proto
