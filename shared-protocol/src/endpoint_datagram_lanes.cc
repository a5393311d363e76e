#include "vmci/proto/endpoint_datagram_lanes.h"

#include <cstring>
#include <limits>
#include <optional>

#include "vmci/proto/handles.h"

namespace vmci::proto {

void EndpointDatagramLanes::grant_in_turn(EndpointInbox& inbox, const RingGrantBody& body,
                                          std::shared_ptr<RingChannel> channel) {
  const Grant grant{body.channel_id, std::move(channel), body.slot,
                    body.generation,  body.handle,        body.ringer_cid,
                    static_cast<SlotKind>(body.kind), body.owner_cid};
  inbox.push_action([this, grant] { add_grant(grant); });
  inbox.rescan();
}

const char* EndpointDatagramLanes::name(Refusal reason) {
  switch (reason) {
    case Refusal::kCorruptLane:
      return "corrupt lane";
    case Refusal::kRewrittenWhileCopied:
      return "datagram rewritten while copied";
    case Refusal::kForgedSource:
      return "forged source";
    case Refusal::kOtherDestination:
      return "other destination";
  }
  return "unknown";
}

void EndpointDatagramLanes::close_in_turn(EndpointInbox& inbox, uint32_t channel_id,
                                          Deliver deliver, Refused refused, Closed closed) {
  inbox.push_action([this, channel_id, deliver = std::move(deliver), refused = std::move(refused),
                     closed = std::move(closed)] {
    vmci_id ringer_cid = VMCI_INVALID_ID;
    close_channel(channel_id, deliver, refused, &ringer_cid);
    if (closed && ringer_cid != VMCI_INVALID_ID) closed(ringer_cid);
  });
}

void EndpointDatagramLanes::add_grant(const Grant& grant) {
  std::lock_guard lock(mutex_);
  auto it = lanes_.find(grant.channel_id);
  if (it == lanes_.end()) {
    it = lanes_.emplace(grant.channel_id, std::make_shared<Lane>(grant.channel, grant.ringer_cid))
             .first;
  }
  it->second->slots[grant.slot] =
      SlotGrant{grant.generation, grant.handle, grant.kind, grant.owner_cid};
}

size_t EndpointDatagramLanes::close_channel(uint32_t channel_id, const Deliver& deliver,
                                            const Refused& refused, vmci_id* ringer_cid) {
  std::shared_ptr<Lane> lane;
  {
    std::lock_guard lock(mutex_);
    auto it = lanes_.find(channel_id);
    if (it == lanes_.end()) return 0;
    lane = std::move(it->second);
    lanes_.erase(it);
  }
  if (ringer_cid != nullptr) *ringer_cid = lane->ringer_cid;
  if (lane->corrupt) return 0;
  // Everything sent is there: hostpeer revoked the ringer's slots before it
  // closed the channel. A record still waiting for its grant then never had
  // one, and is dropped. The ringer may still write the page: what it
  // writes from now on is not read.
  // No barrier: the deliveries it waits for may never come now.
  lane->reader.seal();
  Drained ignored;
  return drain_lane(*lane, std::numeric_limits<size_t>::max(), deliver, refused,
                    std::numeric_limits<uint64_t>::max(), &ignored);
}

size_t EndpointDatagramLanes::lane_count() const {
  std::lock_guard lock(mutex_);
  return lanes_.size();
}

EndpointDatagramLanes::Drained EndpointDatagramLanes::drain(size_t max_per_lane,
                                                            const Deliver& deliver,
                                                            const Refused& refused) {
  std::vector<std::shared_ptr<Lane>> lanes;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, lane] : lanes_) lanes.push_back(lane);
  }
  Drained drained;
  for (const auto& lane : lanes) {
    if (lane->corrupt) continue;
    drained.delivered +=
        drain_lane(*lane, max_per_lane, deliver, refused, deliveries_taken_, &drained);
  }
  waiting_ = drained.waiting;
  return drained;
}

void EndpointDatagramLanes::drain_before_delivery(const Deliver& deliver, const Refused& refused) {
  drain(kLaneRecordsAtMost, deliver, refused);
}

bool EndpointDatagramLanes::delivery_taken() {
  ++deliveries_taken_;
  return waiting_;
}

void EndpointDatagramLanes::restart_delivery_count() {
  deliveries_taken_ = 0;
  waiting_ = false;
}

size_t EndpointDatagramLanes::drain_lane(Lane& lane, size_t max, const Deliver& deliver,
                                         const Refused& refused, uint64_t deliveries_taken,
                                         Drained* drained) {
  size_t delivered = 0;
  std::vector<uint8_t> datagram;
  for (size_t taken = 0;; ++taken) {
    LaneRecord record;
    uint64_t barrier = 0;
    std::string why;
    const LanePeek peeked = lane.reader.peek(&record, &barrier, &why);
    if (peeked == LanePeek::kEmpty) break;
    if (peeked == LanePeek::kCorrupt) {
      lane.corrupt = true;
      refused(lane.ringer_cid, Refusal::kCorruptLane,
              "datagram lane of context " + std::to_string(lane.ringer_cid) +
                  " is corrupt and is not read again: " + why);
      break;
    }
    if (taken == max) {
      drained->more = true;
      break;
    }
    if (peeked == LanePeek::kBarrier) {
      // The ringer's word: a ringer that lies only holds up, or hurries,
      // its own lane.
      if (barrier > deliveries_taken) {
        drained->waiting = true;
        break;
      }
      lane.reader.take_barrier();
      continue;
    }
    std::optional<SlotGrant> grant;
    {
      std::lock_guard lock(mutex_);
      if (auto it = lane.slots.find(record.slot); it != lane.slots.end()) grant = it->second;
    }
    // Not granted yet, or granted anew and this endpoint not told yet: the
    // grant is on its way, and the lane waits for it. (Generations grow;
    // one older than the grant's is a datagram sent before its handle went.)
    if (!grant || record.generation > grant->generation) break;
    if (record.generation < grant->generation) {
      lane.reader.take(record, nullptr);
      continue;
    }
    if (!lane.reader.take(record, &datagram)) {
      refused(lane.ringer_cid, Refusal::kRewrittenWhileCopied,
              "a datagram from context " + std::to_string(lane.ringer_cid) +
                  " was rewritten while it was taken; dropped");
      continue;
    }
    vmci_datagram header;
    std::memcpy(&header, datagram.data(), sizeof header);
    if (grant->kind == SlotKind::kDatagramFromHost) {
      // From the slot's host handle, to this endpoint's context.
      if (header.src.context != grant->handle.context ||
          header.src.resource != grant->handle.resource) {
        refused(lane.ringer_cid, Refusal::kForgedSource,
                "a datagram in the slot of host handle " + to_string(grant->handle) +
                    " names source " + to_string(header.src) + "; dropped");
        continue;
      }
      if (header.dst.context != grant->owner_cid) {
        refused(lane.ringer_cid, Refusal::kOtherDestination,
                "a datagram from " + to_string(header.src) + " to " + to_string(header.dst) +
                    " came through a lane to context " + std::to_string(grant->owner_cid) +
                    "; dropped");
        continue;
      }
      deliver(datagram);
      ++delivered;
      continue;
    }
    if (header.src.context != lane.ringer_cid) {
      refused(lane.ringer_cid, Refusal::kForgedSource,
              "a datagram in the lane of context " + std::to_string(lane.ringer_cid) +
                  " names source " + to_string(header.src) + "; dropped");
      continue;
    }
    if (header.dst.context != grant->handle.context ||
        header.dst.resource != grant->handle.resource) {
      refused(lane.ringer_cid, Refusal::kOtherDestination,
              "a datagram from context " + std::to_string(lane.ringer_cid) + " to " +
                  to_string(header.dst) + " came through the slot of " + to_string(grant->handle) +
                  "; dropped");
      continue;
    }
    deliver(datagram);
    ++delivered;
  }
  return delivered;
}

}  // namespace vmci::proto
