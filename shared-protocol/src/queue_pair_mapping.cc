#include "vmci/proto/queue_pair_mapping.h"

#include <atomic>
#include <utility>

#include "vmci/proto/frame.h"
#include "vmci/proto/queue.h"

namespace vmci::proto {

bool HostQueueMemory::adopt(std::span<const MemoryExtent> extents, std::string* error) {
  if (!queues_->remap_extents(extents, error)) return false;
  std::atomic_ref<uint32_t>(mapped_generation_).fetch_add(1, std::memory_order_acq_rel);
  return true;
}

std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle, int queue_fd, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error) {
  const bool host = status_fd >= 0;
  const QueuePairLayout layout = queue_pair_layout(host ? consume_size : produce_size,
                                                   host ? produce_size : consume_size);
  const MemoryExtent whole{queue_fd, 0, layout.total};
  return map_queue_pair(handle, std::span(&whole, 1), status_fd, produce_size, consume_size,
                        error);
}

namespace {

// The queues of a pair laid out in the guest's view, `guest_produce` and
// `guest_consume` bytes. Null with *error on failure.
std::shared_ptr<SharedMemory> map_queues(std::span<const MemoryExtent> extents,
                                         uint64_t guest_produce, uint64_t guest_consume,
                                         std::string* error) {
  const QueuePairLayout layout = queue_pair_layout(guest_produce, guest_consume);
  // A whole file from its start (hostpeer's memfd) is mapped as it is.
  const bool whole_file =
      extents.size() == 1 && extents[0].offset == 0 && extents[0].size == layout.total;
  return whole_file ? SharedMemory::map_fd(extents[0].fd, layout.total, error)
                    : SharedMemory::map_extents(extents, layout.total, error);
}

}  // namespace

std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle,
                                          std::span<const MemoryExtent> extents, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error,
                                          std::shared_ptr<HostQueueMemory>* host_memory) {
  if (status_fd >= 0) {
    auto status = SharedMemory::map_fd(status_fd, kQueuePairStatusSize, error);
    if (!status) return nullptr;
    return map_host_queue_pair(handle, extents, std::move(status), produce_size, consume_size,
                               error, host_memory);
  }
  std::shared_ptr<SharedMemory> queues = map_queues(extents, produce_size, consume_size, error);
  if (!queues) return nullptr;
  const QueuePairView view = creator_view(queues->data(), produce_size, consume_size);
  return std::make_unique<QueuePair>(handle, view, std::move(queues));
}

std::unique_ptr<QueuePair> map_host_queue_pair(vmci_handle handle,
                                               std::span<const MemoryExtent> extents,
                                               std::shared_ptr<SharedMemory> status,
                                               uint64_t produce_size, uint64_t consume_size,
                                               std::string* error,
                                               std::shared_ptr<HostQueueMemory>* host_memory) {
  // hostpeer lays the pair out in the guest's view: a host's produce queue
  // is the guest's consume queue.
  const uint64_t guest_produce = consume_size;
  const uint64_t guest_consume = produce_size;
  std::shared_ptr<SharedMemory> queues = map_queues(extents, guest_produce, guest_consume, error);
  if (!queues) return nullptr;
  auto memory = std::make_shared<HostQueueMemory>(std::move(queues), std::move(status));
  const QueuePairView view = attacher_view(memory->queues(), guest_produce, guest_consume);
  const QueuePairStatus* s = memory->status();
  auto qp = std::make_unique<QueuePair>(handle, view, memory, &s->peer_attached,
                                        &s->memory_generation, memory->mapped_generation());
  if (host_memory != nullptr) *host_memory = std::move(memory);
  return qp;
}

bool extents_of(std::span<const QueuePairExtent> table, std::span<const int> fds, uint64_t size,
                std::vector<MemoryExtent>* out, std::string* error) {
  out->clear();
  uint64_t total = 0;
  for (const QueuePairExtent& e : table) {
    if (e.fd_index >= fds.size() || e.page_count == 0) {
      *error = "queue pair memory extent names descriptor " + std::to_string(e.fd_index) + " of " +
               std::to_string(fds.size()) + " with " + std::to_string(e.page_count) + " pages";
      return false;
    }
    const uint64_t bytes = uint64_t{e.page_count} * kQueuePageSize;
    total += bytes;
    out->push_back(MemoryExtent{fds[e.fd_index], e.file_offset, bytes});
  }
  if (total != size) {
    *error = "queue pair memory extents hold " + std::to_string(total) + " bytes, the pair " +
             std::to_string(size);
    return false;
  }
  return true;
}

}  // namespace vmci::proto
