// ring_grants.h: the ring-channel slots hostpeer granted this endpoint as a
// ringer (vmci/proto/ring_channel.h). A doorbell_notify that finds one rings
// the slot itself: no request to hostpeer, and no system call while the
// doorbell's owner is awake. A slot hostpeer revoked refuses the ring; the
// grant is then forgotten and the caller asks hostpeer, which answers as
// the rules say (NOT_FOUND for a destroyed doorbell).
//
// Datagram slots work the same way: a datagram_send to a host datagram
// handle that has one goes into the channel's lane
// (vmci/proto/datagram_lane.h) instead of to hostpeer. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <utility>

#include "vmci/proto/datagram_lane.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/ring_channel.h"

namespace vmci::guest::internal {

class RingGrants {
 public:
  enum class Ring { kRung, kRungAndWoke, kNotGranted };

  // Keeps a grant. `channel`: the channel's page when it came with the
  // grant (the channel's first), else null (the channel is known). False if
  // the channel is unknown and did not come.
  bool add(const proto::RingGrantBody& grant, std::shared_ptr<proto::RingChannel> channel);
  // hostpeer closed the channel: its grants go, and it is unmapped.
  void close_channel(uint32_t channel_id);
  // The connection is gone: every grant goes (a notify then fails as the
  // connection's calls do, though the owner might still see a slot).
  void clear();
  // Rings `doorbell` through its slot, if one is granted for `priv_flags`.
  Ring ring(vmci_handle doorbell, uint32_t priv_flags);

  enum class Send { kSent, kSentAndWoke, kFull, kNotGranted };
  // Sends the datagram `header` + `payload` through the lane of the slot
  // granted for header.dst, if there is one. kFull: the lane holds too many
  // pending bytes (VMCI_ERROR_NO_RESOURCES).
  Send send(const vmci_datagram& header, std::span<const uint8_t> payload);

 private:
  struct Channel {
    std::shared_ptr<proto::RingChannel> memory;
    std::unique_ptr<proto::LaneWriter> lane;  // made at its first datagram grant
  };
  struct Grant {
    uint32_t channel_id;
    Channel* channel;  // in channels_, while the grant is kept
    uint32_t slot;
    uint32_t generation;
    uint32_t lane_cap;  // datagram grants
  };
  using Key = std::pair<uint64_t, uint32_t>;  // handle key, caller flags

  std::mutex mutex_;
  std::map<uint32_t, Channel> channels_;  // by id
  std::map<Key, Grant> grants_;           // doorbells'
  std::map<uint64_t, Grant> datagram_grants_;  // by destination handle key
};

}  // namespace vmci::guest::internal
