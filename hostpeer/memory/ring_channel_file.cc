#include "memory/ring_channel_file.h"

#include <unistd.h>

#include "memory/sealed_memfd.h"

namespace vmci::host {

std::unique_ptr<RingChannelFile> RingChannelFile::create(std::string* error) {
  const int fd = sealed_memfd("vmci-ring-channel", proto::kRingChannelFileSize, error);
  if (fd < 0) return nullptr;
  auto channel = proto::map_ring_channel(fd, error);
  if (!channel) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<RingChannelFile>(new RingChannelFile(fd, std::move(channel)));
}

RingChannelFile::~RingChannelFile() { ::close(fd_); }

}  // namespace vmci::host
