// datagram_lane.h: the datagram fast path. Once hostpeer has routed a
// datagram from a guest to a host datagram handle (spec §3.5: the handle
// exists and privileges allow it), it grants the guest a datagram slot of
// the ring channel between the guest and the handle's owner
// (vmci/proto/ring_channel.h). Later datagrams to that handle go into the
// channel's lane, a byte ring that follows the slot page in the same
// memory: no call to hostpeer and, while the owner is awake, no system
// call. The send returns DG_SIZE, as hostpeer would, or
// VMCI_ERROR_NO_RESOURCES while the lane holds too many pending bytes (the
// queue limit of spec §3.5, per lane: queued + DG_SIZE >= lane_cap).
//
// A record is: u32 slot, u32 generation, the datagram (header and
// payload), padded to 8 bytes; it may wrap around the end of the data.
//
// A barrier record (slot kLaneBarrierSlot, generation 0, then a u64) holds
// back the records after it until the owner has taken that many of
// hostpeer's deliveries on its connection. The ringer writes one before a
// datagram whenever RingChannel::owner_deliveries has moved since its last
// record, so that what it sends after something hostpeer delivered for it
// (an event of its detach, a datagram it sent through hostpeer) comes after
// that delivery; the owner, for its part, takes what the lanes hold before
// each delivery of hostpeer's. hostpeer publishes owner_deliveries (2.3)
// only to owners that said kFeatureHostLanes, so a lane to an older owner
// never holds one; to a guest owner's channels every delivery, to a host
// owner's only what the channel's ringer caused.
// head and sent_bytes are the ringer's to write, tail and taken_bytes the
// owner's, and each side keeps its own copy: neither trusts what the other
// writes. The owner checks every index and record (a lane that breaks a
// rule is corrupt, and is not read again) and copies each datagram out
// before anything looks at it.
//
//   // ringer (one writer per channel)      // owner (one reader per channel)
//   LaneWriter lane(channel);               LaneReader lane(channel);
//   switch (lane.send(slot, gen, h, body,   LaneRecord r;
//                     cap)) { ... }         while (lane.peek(&r, &why) == LanePeek::kRecord)
//                                             lane.take(r, &datagram);
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmci/proto/ring_channel.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::proto {

struct DatagramLaneControl {
  uint64_t head;        // record bytes written (the ringer's)
  uint64_t sent_bytes;  // datagram bytes written (the ringer's)
  uint8_t ringer_pad[48];
  uint64_t tail;         // record bytes taken (the owner's)
  uint64_t taken_bytes;  // datagram bytes taken (the owner's)
  uint8_t owner_pad[48];
};
static_assert(sizeof(DatagramLaneControl) <= kDatagramLaneControlSize);

// Room a record of a `datagram_size`-byte datagram takes.
inline constexpr uint64_t lane_record_size(uint64_t datagram_size) {
  return (8 + datagram_size + 7) & ~uint64_t{7};
}
// The slot of a barrier record, and its size.
inline constexpr uint32_t kLaneBarrierSlot = 0xFFFFFFFF;
inline constexpr uint64_t kLaneBarrierRecordSize = 16;
// The records a lane holds at most (all of them barriers).
inline constexpr uint64_t kLaneRecordsAtMost = kDatagramLaneDataSize / kLaneBarrierRecordSize;
// The largest lane_cap hostpeer grants: any datagram under it fits.
inline constexpr uint64_t kMaxLaneCap =
    kDatagramLaneDataSize - lane_record_size(VMCI_MAX_DG_SIZE);

enum class LaneSend {
  kSent,            // in the lane; the owner is awake
  kSentWakeNeeded,  // in the lane; the owner may sleep: wake(&channel->wake)
  kFull,            // VMCI_ERROR_NO_RESOURCES: too much is pending
  kRefused,         // the slot is revoked or granted anew: ask hostpeer
};

class LaneWriter {
 public:
  // `channel` is mapped whole (kRingChannelFileSize) for as long as this lives.
  explicit LaneWriter(RingChannel* channel) : channel_(channel) {}
  // Writes the datagram `header` + `payload` (header.payload_size bytes)
  // for `slot` if it is still granted with `generation`. Not thread-safe.
  LaneSend send(uint32_t slot, uint32_t generation, const vmci_datagram& header,
                std::span<const uint8_t> payload, uint64_t lane_cap);

 private:
  RingChannel* const channel_;
  uint64_t head_ = 0, sent_ = 0;
  uint64_t barrier_ = 0;  // the last barrier written (owner_deliveries starts at 0)
};

struct LaneRecord {
  uint32_t slot;
  uint32_t generation;
  uint64_t size;  // the datagram's: header and payload
};

enum class LanePeek {
  kRecord,
  kBarrier,  // *barrier: the deliveries to take before the records after it
  kEmpty,
  kCorrupt,
};

class LaneReader {
 public:
  explicit LaneReader(RingChannel* channel) : channel_(channel) {}
  // The next record, not taken yet; kCorrupt (with *why) if the indexes or
  // the record break the lane's rules. A barrier record gives kBarrier and
  // its count in *barrier.
  LanePeek peek(LaneRecord* record, uint64_t* barrier, std::string* why);
  // Takes the barrier record peek() returned.
  void take_barrier();
  // Takes the record peek() returned: copies its datagram into *datagram
  // (null: drops it) and frees its room. False (nothing copied, the record
  // still taken) if the copy's header no longer matches what peek() read:
  // the ringer rewrote it meanwhile.
  bool take(const LaneRecord& record, std::vector<uint8_t>* datagram);
  // From now on the lane ends where the ringer's head is now: what the
  // ringer writes later (it may still have the page mapped) is never read.
  // For a closed channel, so that its final drain is bounded by what the
  // lane held when it closed (at most kDatagramLaneDataSize bytes).
  void seal();

 private:
  uint64_t head() const;

  RingChannel* const channel_;
  uint64_t tail_ = 0, taken_ = 0;
  bool sealed_ = false;
  uint64_t sealed_head_ = 0;
};

}  // namespace vmci::proto
