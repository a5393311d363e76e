// ringer_grants.h: the ring-channel slots hostpeer granted an endpoint as a
// ringer (vmci/proto/ring_channel.h). A doorbell_notify that finds one rings
// the slot itself: no request to hostpeer, and no system call while the
// doorbell's owner is awake. A slot hostpeer revoked refuses the ring; the
// grant is then forgotten and the caller asks hostpeer, which answers as
// the rules say (NOT_FOUND for a destroyed doorbell).
//
// Datagram slots work the same way (vmci/proto/datagram_lane.h): a guest's
// datagram to a host datagram handle that has one (SlotKind::kDatagram,
// keyed by the destination handle), or a host's datagram from one of its
// datagram handles to a guest context that has one
// (SlotKind::kDatagramFromHost, keyed by the source handle and the guest's
// context), goes into the channel's lane instead of to hostpeer. Shared by
// the guest driver and embedded host endpoints. Thread-safe.
//
//   RingerGrants grants;
//   grants.add(body, channel);                      // a kRingGrant, side kRinger
//   switch (grants.send(header, payload)) { ... }   // kNotGranted: ask hostpeer
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <tuple>
#include <utility>

#include "vmci/proto/datagram_lane.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/ring_channel.h"

namespace vmci::proto {

class RingerGrants {
 public:
  enum class Ring { kRung, kRungAndWoke, kNotGranted };
  // Keeps a grant. `channel`: the channel's page when it came with the
  // grant (the channel's first), else null (the channel is known). False if
  // the channel is unknown and did not come.
  bool add(const RingGrantBody& grant, std::shared_ptr<RingChannel> channel);
  // hostpeer closed the channel: its grants go, and it is unmapped.
  void close_channel(uint32_t channel_id);
  // The connection is gone: every grant goes (a notify then fails as the
  // connection's calls do, though the owner might still see a slot).
  void clear();

  // Rings `doorbell` through its slot, if one is granted for `priv_flags`.
  Ring ring(vmci_handle doorbell, uint32_t priv_flags);

  enum class Send { kSent, kSentAndWoke, kFull, kNotGranted };
  // Sends the datagram `header` + `payload` through the lane of a slot
  // granted for it: for header.dst (a host handle), or for header.src (a
  // host handle, whose context must be VMCI_HOST_CONTEXT_ID, not left
  // invalid) and header.dst.context. kFull: the lane holds too many
  // pending bytes (VMCI_ERROR_NO_RESOURCES).
  Send send(const vmci_datagram& header, std::span<const uint8_t> payload);
  // The same, as datagram_send's result: VMCI_DG_SIZE once in the lane,
  // VMCI_ERROR_NO_RESOURCES while it is full; nullopt without a grant (the
  // datagram goes to hostpeer).
  std::optional<int> send_result(const vmci_datagram& header, std::span<const uint8_t> payload);

 private:
  struct Channel {
    std::shared_ptr<RingChannel> memory;
    std::unique_ptr<LaneWriter> lane;  // made at its first datagram grant
  };
  struct Grant {
    uint32_t channel_id;
    Channel* channel;  // in channels_, while the grant is kept
    uint32_t slot;
    uint32_t generation;
    uint32_t lane_cap;  // datagram grants
  };
  using Key = std::pair<uint64_t, uint32_t>;  // handle key, caller flags
  // A host's lanes: its source handle's key, the guest's context.
  using SourceKey = std::pair<uint64_t, vmci_id>;

  // Through `grants`' entry `key`, if any (mutex_ held; sets *to_wake).
  template <typename Map>
  Send send_through(Map& grants, const typename Map::key_type& key, const vmci_datagram& header,
                    std::span<const uint8_t> payload, std::shared_ptr<RingChannel>* to_wake);

  std::mutex mutex_;
  std::map<uint32_t, Channel> channels_;         // by id
  std::map<Key, Grant> grants_;                  // doorbells'
  std::map<uint64_t, Grant> datagram_grants_;    // by destination handle key
  std::map<SourceKey, Grant> source_grants_;     // a host's, by source and guest
};

}  // namespace vmci::proto
