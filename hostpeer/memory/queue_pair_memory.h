// queue_pair_memory.h: the memory of one queue pair: an anonymous memfd (no
// name in /dev/shm or anywhere, so nothing can be left behind by a killed
// process), laid out as VMCI does (vmci/proto/queue.h), both queue headers
// initialised as the hypervisor does at create time, and sealed against
// resizing so that no endpoint can shrink it under another's mapping.
//
// hostpeer creates it and hands the descriptor to the endpoints, which map
// it; it never maps the memory itself.
//
//   std::string error;
//   auto memory = QueuePairMemory::create(handle, 65536, 65536, &error);
//   send_with_fd(memory->fd());
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vmci/vmci_defs.h"

namespace vmci::host {

class QueuePairMemory {
 public:
  // Sizes from the creator's point of view. Null with *error on failure.
  static std::unique_ptr<QueuePairMemory> create(vmci_handle handle, uint64_t produce_size,
                                                 uint64_t consume_size, std::string* error);
  ~QueuePairMemory();
  QueuePairMemory(const QueuePairMemory&) = delete;
  QueuePairMemory& operator=(const QueuePairMemory&) = delete;

  // Close-on-exec; owned by this object.
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  QueuePairMemory(int fd, uint64_t size) : fd_(fd), size_(size) {}
  const int fd_;
  const uint64_t size_;
};

}  // namespace vmci::host
