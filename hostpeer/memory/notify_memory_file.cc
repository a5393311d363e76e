#include "memory/notify_memory_file.h"

#include <unistd.h>

#include "memory/sealed_memfd.h"

namespace vmci::host {

std::unique_ptr<NotifyMemoryFile> NotifyMemoryFile::create(std::string* error) {
  const int fd = sealed_memfd("vmci-notify", proto::kNotifyMemorySize, error);
  if (fd < 0) return nullptr;
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

std::shared_ptr<proto::NotifyWakeWord> NotifyMemoryFile::wake_word() const {
  return std::shared_ptr<proto::NotifyWakeWord>(mapping_, &memory()->wake);
}

void NotifyMemoryFile::ring(uint64_t index) {
  if (index >= proto::kNotifyIndexes) return;
  if (proto::ring(memory(), index)) proto::wake(&memory()->wake);
}

}  // namespace vmci::host
