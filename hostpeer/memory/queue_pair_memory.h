// queue_pair_memory.h: the memory of one queue pair: an anonymous memfd (no
// name in /dev/shm or anywhere, so nothing can be left behind by a killed
// process), laid out as VMCI does (vmci/proto/queue.h), both queue headers
// initialised as the hypervisor does at create time, and sealed against
// resizing so that no endpoint can shrink it under another's mapping.
//
// hostpeer creates it and hands the descriptor to the endpoints, which map
// it; it never maps the queues itself. With it goes the status page of a
// host endpoint (proto::QueuePairStatus), which hostpeer maps and writes:
// whether the guest endpoint's memory is there.
//
//   std::string error;
//   auto memory = QueuePairMemory::create(handle, 65536, 65536, &error);
//   send_with_fd(memory->fd());
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vmci/proto/shared_memory.h"
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
  vmci_handle handle() const { return handle_; }
  uint64_t size() const { return size_; }
  // The host endpoint's status page (kQueuePairStatusSize bytes).
  int status_fd() const { return status_fd_; }
  void set_peer_attached(bool attached);

 private:
  QueuePairMemory(vmci_handle handle, int fd, uint64_t size, int status_fd)
      : handle_(handle), fd_(fd), size_(size), status_fd_(status_fd) {}
  const vmci_handle handle_;
  const int fd_;
  const uint64_t size_;
  const int status_fd_;
  std::shared_ptr<proto::SharedMemory> status_;
};

}  // namespace vmci::host
