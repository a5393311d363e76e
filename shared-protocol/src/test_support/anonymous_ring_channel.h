// anonymous_ring_channel.h (tests only): a ring channel's page in
// anonymous shared memory, zeroed, for tests that play both of its sides.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "vmci/proto/ring_channel.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::proto::test_support {

inline std::shared_ptr<RingChannel> anonymous_ring_channel() {
  std::string error;
  auto memory = SharedMemory::anonymous(kRingChannelFileSize, &error);
  if (!memory) throw std::runtime_error("ring channel memory: " + error);
  auto* page = reinterpret_cast<RingChannel*>(memory->data());
  return std::shared_ptr<RingChannel>(std::move(memory), page);
}

}  // namespace vmci::proto::test_support
