#include "memory/notify_memory_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmci::host {

std::unique_ptr<NotifyMemoryFile> NotifyMemoryFile::create(std::string* error) {
  const int fd = ::memfd_create("vmci-notify", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return nullptr;
  }
  if (::ftruncate(fd, proto::kNotifyMemorySize) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    *error = std::string("sizing notify memory: ") + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  auto mapping = proto::SharedMemory::map_fd(fd, proto::kNotifyMemorySize, error);
  if (!mapping) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<NotifyMemoryFile>(new NotifyMemoryFile(fd, std::move(mapping)));
}

NotifyMemoryFile::~NotifyMemoryFile() { ::close(fd_); }

proto::NotifyMemory* NotifyMemoryFile::memory() const {
  return reinterpret_cast<proto::NotifyMemory*>(mapping_->data());
}

void NotifyMemoryFile::ring(uint64_t index) {
  if (index >= proto::kNotifyIndexes) return;
  if (proto::ring(memory(), index)) proto::wake(memory());
}

}  // namespace vmci::host
