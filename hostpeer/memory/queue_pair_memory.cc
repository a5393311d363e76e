#include "memory/queue_pair_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  const int fd = ::memfd_create("vmci-queue-pair", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    *error = errno_text("memfd_create");
    return nullptr;
  }
  std::unique_ptr<QueuePairMemory> memory(new QueuePairMemory(fd, layout.total));
  if (::ftruncate(fd, static_cast<off_t>(layout.total)) != 0) {
    *error = errno_text("sizing queue pair memory");
    return nullptr;
  }
  if (!write_header(fd, layout.produce_header, handle) ||
      !write_header(fd, layout.consume_header, handle)) {
    *error = errno_text("writing queue headers");
    return nullptr;
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    *error = errno_text("sealing queue pair memory");
    return nullptr;
  }
  return memory;
}

QueuePairMemory::~QueuePairMemory() { ::close(fd_); }

}  // namespace vmci::host
