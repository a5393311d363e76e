// queue_pair_mapping.h: an endpoint's QueuePair over the memory hostpeer
// passed for it (spec §6.3, §6.5).
//
// A guest endpoint sees the pair as hostpeer lays it out (its produce queue
// first); a host endpoint sees it swapped, and has the status page that
// says whether the guest's memory is there. The memory is one memfd (the
// pairs hostpeer makes) or, when it is a guest's own pages, extents of the
// guest's RAM files, mapped page by page into one reserved range; either
// is a list of extents here.
//
//   auto qp = map_queue_pair(handle, fds[0], -1, 65536, 65536, &error);   // a guest
//   auto qp = map_queue_pair(handle, fds[0], fds[1], 65536, 65536, &error);  // a host
//   std::shared_ptr<HostQueueMemory> memory;                              // a host, extents
//   auto qp = map_queue_pair(handle, extents, status_fd, 65536, 65536, &error, &memory);
//   memory->adopt(guest_extents, &error);  // later: the guest's pages replace hostpeer's
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmci/proto/frame.h"
#include "vmci/proto/shared_memory.h"
#include "vmci/queue_pair.h"

namespace vmci::proto {

// A host endpoint's mapping of one pair: the queues and the status page.
// Thread-safe: adopt() may run while the pair's data calls run (they
// answer QUEUEPAIR_NOTATTACHED until it is done).
class HostQueueMemory {
 public:
  HostQueueMemory(std::shared_ptr<SharedMemory> queues, std::shared_ptr<SharedMemory> status)
      : queues_(std::move(queues)), status_(std::move(status)) {}
  // Maps `extents` (the guest's pages, which hostpeer sent in a
  // kQueuePairMemory frame) over the queues in place, then counts one more
  // mapped generation, so that the QueuePair sees its guest once hostpeer's
  // status page says the same generation. False with *error if they do not
  // fit (the pair then stays not attached).
  bool adopt(std::span<const MemoryExtent> extents, std::string* error);

  uint8_t* queues() const { return queues_->data(); }
  const QueuePairStatus* status() const {
    return reinterpret_cast<const QueuePairStatus*>(status_->data());
  }
  const uint32_t* mapped_generation() const { return &mapped_generation_; }

 private:
  std::shared_ptr<SharedMemory> queues_;
  std::shared_ptr<SharedMemory> status_;
  uint32_t mapped_generation_ = 0;
};

// Sizes from the endpoint's own view. `status_fd` -1: a guest endpoint.
// The descriptors stay the caller's. Null with *error on failure.
std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle, int queue_fd, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error);
// As above over `extents`, which fill the pair's memory in order (a memfd
// is one extent). A host endpoint's mapping is put in *host_memory when it
// is given, for adopt().
std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle,
                                          std::span<const MemoryExtent> extents, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error,
                                          std::shared_ptr<HostQueueMemory>* host_memory = nullptr);
// A host endpoint's, as above, with its status page mapped already
// (`status`, kQueuePairStatusSize bytes: hostpeer's own mapping, for an
// endpoint in hostpeer's process).
std::unique_ptr<QueuePair> map_host_queue_pair(vmci_handle handle,
                                               std::span<const MemoryExtent> extents,
                                               std::shared_ptr<SharedMemory> status,
                                               uint64_t produce_size, uint64_t consume_size,
                                               std::string* error,
                                               std::shared_ptr<HostQueueMemory>* host_memory);

// The extents a kQueuePairMemory frame describes, over the descriptors that
// came with it; false with *error if an extent names a descriptor that is
// not there, is empty, or the pages do not add up to `size` bytes.
bool extents_of(std::span<const QueuePairExtent> table, std::span<const int> fds, uint64_t size,
                std::vector<MemoryExtent>* out, std::string* error);

}  // namespace vmci::proto
