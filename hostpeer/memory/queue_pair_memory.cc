#include "memory/queue_pair_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "memory/sealed_memfd.h"
#include "vmci/proto/queue.h"

namespace vmci::host {
namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool write_header(int fd, uint64_t offset, vmci_handle handle) {
  const vmci_queue_header header{handle, 0, 0};
  return ::pwrite(fd, &header, sizeof header, static_cast<off_t>(offset)) ==
         static_cast<ssize_t>(sizeof header);
}

}  // namespace

std::unique_ptr<QueuePairMemory> QueuePairMemory::create(vmci_handle handle, uint64_t produce_size,
                                                         uint64_t consume_size,
                                                         std::string* error) {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  const int fd = sealed_memfd("vmci-queue-pair", layout.total, error);
  if (fd < 0) return nullptr;
  const int status_fd = sealed_memfd("vmci-queue-pair-status", proto::kQueuePairStatusSize, error);
  if (status_fd < 0) {
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<QueuePairMemory> memory(new QueuePairMemory(handle, fd, layout.total, status_fd));
  if (!write_header(fd, layout.produce_header, handle) ||
      !write_header(fd, layout.consume_header, handle)) {
    *error = errno_text("writing queue headers");
    return nullptr;
  }
  memory->status_ = proto::SharedMemory::map_fd(status_fd, proto::kQueuePairStatusSize, error);
  if (!memory->status_) return nullptr;
  return memory;
}

void QueuePairMemory::set_peer_attached(bool attached) {
  auto* status = reinterpret_cast<proto::QueuePairStatus*>(status_->data());
  std::atomic_ref<uint32_t>(status->peer_attached).store(attached ? 1 : 0,
                                                         std::memory_order_release);
}

QueuePairMemory::~QueuePairMemory() {
  ::close(fd_);
  ::close(status_fd_);
}

}  // namespace vmci::host
