// ring_channel_file.h: one ring channel's memory (vmci/proto/ring_channel.h:
// the slot page and the datagram lane) as a sealed anonymous memfd: hostpeer maps it to grant and revoke slots,
// and hands the descriptor to the ringer and to the doorbells' owner (an
// embedded owner uses hostpeer's own mapping).
#pragma once

#include <memory>
#include <string>

#include "vmci/proto/ring_channel.h"

namespace vmci::host {

class RingChannelFile {
 public:
  // Null with *error if it cannot be made.
  static std::unique_ptr<RingChannelFile> create(std::string* error);
  ~RingChannelFile();
  RingChannelFile(const RingChannelFile&) = delete;
  RingChannelFile& operator=(const RingChannelFile&) = delete;

  // Close-on-exec; owned by this object.
  int fd() const { return fd_; }
  // The mapped channel, whole; the pointer keeps the mapping.
  const std::shared_ptr<proto::RingChannel>& channel() const { return channel_; }

 private:
  RingChannelFile(int fd, std::shared_ptr<proto::RingChannel> channel)
      : fd_(fd), channel_(std::move(channel)) {}
  const int fd_;
  const std::shared_ptr<proto::RingChannel> channel_;
};

}  // namespace vmci::host
