// endpoint_datagram_lanes.h: the datagram lanes an endpoint owns
// (vmci/proto/datagram_lane.h): which slot of which channel hostpeer granted
// for which of its datagram handles, and the drain that takes the lanes'
// datagrams, checks them, and hands each over as a private copy. Shared by
// the guest driver and embedded host endpoints. A kDatagram slot carries a
// guest's datagrams to one of this (host) endpoint's handles; a
// kDatagramFromHost slot a host handle's datagrams to this (guest)
// endpoint's context, any resource of it (the endpoint drops those for a
// resource it has no handle of, as it does hostpeer's deliveries).
//
// Order: a lane's datagrams are handed over in the order they were sent.
// A record for a slot the owner has not been granted yet (its grant is on
// its way) waits, and so does the rest of its lane. Grants must be added in
// the order of the endpoint's deliveries (the delivery thread adds them, as
// an EndpointInbox action), so that a datagram hostpeer delivered before
// the grant is handed over before any that went through the lane.
//
// Thread-safe; add_grant, drain and close_channel are for the delivery
// thread.
//
//   lanes.grant_in_turn(inbox, body, channel);       // a kRingGrant for a datagram slot
//   auto drained = lanes.drain(64, deliver, refused); // the delivery thread's scan
//   if (drained.more) inbox.rescan();
//   lanes.close_in_turn(inbox, id, deliver, refused, closed); // the channel closed
//
// `refused` hears why, and from which ringer, so that its owner can bound
// what a hostile ringer makes it log (vmci/proto/log_rate_limit.h): key by
// (ringer_cid, reason), and forget the ringer in `closed`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vmci/proto/datagram_lane.h"
#include "vmci/proto/endpoint_inbox.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/ring_channel.h"
#include "vmci/vmci_defs.h"

namespace vmci::proto {

// How many datagrams a drain takes from each lane before it lets the
// endpoint's other work (queued deliveries, other lanes) have a turn.
inline constexpr size_t kLaneDrainShare = 256;

class EndpointDatagramLanes {
 public:
  struct Grant {
    uint32_t channel_id;
    std::shared_ptr<RingChannel> channel;  // mapped whole
    uint32_t slot;
    uint32_t generation;
    vmci_handle handle;  // the endpoint's datagram handle (kDatagramFromHost: the host's)
    vmci_id ringer_cid;  // the context whose datagrams the lane carries
    SlotKind kind = SlotKind::kDatagram;
    vmci_id owner_cid = VMCI_INVALID_ID;  // kDatagramFromHost: this endpoint's context
  };
  struct Drained {
    size_t delivered = 0;
    bool more = false;  // a lane was left with datagrams: drain again
    // A lane waits for deliveries of hostpeer the endpoint has not taken
    // yet (its barrier): drain again once one is taken.
    bool waiting = false;
  };
  // Why a datagram, or a whole lane, was dropped: the ringer broke a rule.
  enum class Refusal : uint32_t {
    kCorruptLane,           // an index or record: the lane is not read again
    kRewrittenWhileCopied,  // the datagram changed while it was copied out
    kForgedSource,          // its source is not the ringer's context
    kOtherDestination,      // its destination is not the slot's handle
  };
  static const char* name(Refusal reason);

  using Deliver = std::function<void(std::vector<uint8_t>& datagram)>;
  // `why` says what was dropped, naming the ringer's context and the rule.
  using Refused = std::function<void(vmci_id ringer_cid, Refusal reason, const std::string& why)>;
  // A closed channel's lane is forgotten: its ringer's context.
  using Closed = std::function<void(vmci_id ringer_cid)>;

  // A datagram slot hostpeer granted (`body`, of `channel`), added by the
  // delivery thread in its turn among the deliveries queued on `inbox`,
  // then a scan (datagrams may wait in the lane for it). Any thread.
  void grant_in_turn(EndpointInbox& inbox, const RingGrantBody& body,
                     std::shared_ptr<RingChannel> channel);
  // The channel closed: close_channel() in the delivery thread's turn, then
  // `closed` (if given, and if the channel had a lane).
  void close_in_turn(EndpointInbox& inbox, uint32_t channel_id, Deliver deliver, Refused refused,
                     Closed closed = nullptr);

  void add_grant(const Grant& grant);
  // The channel is closed (its ringer went, or changed context): hands
  // over every datagram its lane still holds, which their sender was told
  // were sent, then forgets the lane. For the delivery thread, in turn with
  // the deliveries and grants (an EndpointInbox action). Returns how many;
  // sets *ringer_cid (if given) to the lane's ringer if there was a lane.
  size_t close_channel(uint32_t channel_id, const Deliver& deliver, const Refused& refused,
                       vmci_id* ringer_cid = nullptr);
  // Hands over at most `max_per_lane` datagrams from each lane. `refused`
  // hears of each datagram or lane dropped for breaking a rule (Refusal):
  // a corrupt lane, a datagram rewritten while copied, a source that is not
  // the ringer's context (kDatagramFromHost: not the slot's host handle), a
  // destination other than the slot's handle (kDatagramFromHost: another
  // context than this endpoint's).
  // A lane stops at a barrier record (datagram_lane.h) that asks for more
  // of hostpeer's deliveries than the endpoint has taken (below).
  Drained drain(size_t max_per_lane, const Deliver& deliver, const Refused& refused);

  // The owner's half of the barrier records, for the delivery thread alone,
  // around each delivery of hostpeer's on its connection:
  // Before it: hands over what every lane holds up to its barrier, so that
  // nothing a ringer sent before what made hostpeer deliver comes after.
  void drain_before_delivery(const Deliver& deliver, const Refused& refused);
  // After it: one more taken; true if a lane was waiting at a barrier
  // (scan again).
  bool delivery_taken();
  // A new connection to hostpeer: its deliveries are counted from 0.
  void restart_delivery_count();
  size_t lane_count() const;

 private:
  struct SlotGrant {
    uint32_t generation;
    vmci_handle handle;
    SlotKind kind;
    vmci_id owner_cid;
  };
  struct Lane {
    explicit Lane(std::shared_ptr<RingChannel> c, vmci_id cid)
        : channel(std::move(c)), reader(channel.get()), ringer_cid(cid) {}
    const std::shared_ptr<RingChannel> channel;
    LaneReader reader;  // the delivery thread's
    const vmci_id ringer_cid;
    bool corrupt = false;  // the delivery thread's
    std::map<uint32_t, SlotGrant> slots;  // guarded by mutex_
  };

  // Drains one lane (delivery thread, no lock held).
  // (No barrier applies with deliveries_taken = UINT64_MAX.)
  size_t drain_lane(Lane& lane, size_t max, const Deliver& deliver, const Refused& refused,
                    uint64_t deliveries_taken, Drained* drained);
  // The delivery thread's: hostpeer's deliveries taken on this connection,
  // and whether the last drain left a lane at a barrier.
  uint64_t deliveries_taken_ = 0;
  bool waiting_ = false;

  mutable std::mutex mutex_;
  std::map<uint32_t, std::shared_ptr<Lane>> lanes_;  // by channel id
};

}  // namespace vmci::proto
