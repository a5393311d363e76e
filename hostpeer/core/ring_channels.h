// ring_channels.h: the doorbell and datagram fast path's grants
// (vmci/proto/ring_channel.h, vmci/proto/datagram_lane.h). One channel per
// (ringer, owner) pair of connections, made when the core first lets the
// ringer ring one of the owner's doorbells or send to one of its datagram
// handles; one slot in it per (handle, ringer's caller flags). (Doorbells
// and host datagram handles share one table of ids, so a handle names one
// or the other.) A slot is revoked when its handle goes; a channel is
// revoked whole and closed when either side goes.
// Not thread-safe: the hypervisor core serialises calls.
//
//   RingChannels channels(RingChannelFile::create);
//   if (auto g = channels.grant(ringer, owner, doorbell, 0, &error)) { tell both sides }
//   channels.revoke(doorbell);              // on unlink, before answering it
//   for (auto& c : channels.close_all(peer)) { tell c's other side }
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "memory/ring_channel_file.h"
#include "vmci/vmci_defs.h"

namespace vmci::host {

// Channels a connection may own: its delivery thread sleeps on all of them
// at once (one futex_waitv takes 128 words, its own among them).
inline constexpr size_t kMaxRingChannelsPerOwner = 120;
// Channels a connection may ring through (a page and a descriptor each).
inline constexpr size_t kMaxRingChannelsPerRinger = 1024;

using RingChannelFactory = std::function<std::unique_ptr<RingChannelFile>(std::string* error)>;

struct RingGrant {
  uint32_t channel_id;
  uint32_t slot;
  uint32_t generation;
  uint64_t ringer;
  uint64_t owner;
  std::shared_ptr<RingChannelFile> memory;
  bool first_for_ringer;  // the channel is new to that side: pass its memory
  bool first_for_owner;
};

struct ClosedRingChannel {
  uint32_t channel_id;
  uint64_t ringer;
  uint64_t owner;
};

class RingChannels {
 public:
  // Grants refused since construction, by the bound that refused them.
  struct Refusals {
    uint64_t owner_channels = 0;   // the owner has kMaxRingChannelsPerOwner
    uint64_t ringer_channels = 0;  // the ringer has kMaxRingChannelsPerRinger
    uint64_t slots = 0;            // the channel's slots are used up
    uint64_t memory = 0;           // no page could be made
  };

  explicit RingChannels(RingChannelFactory make = RingChannelFile::create)
      : make_(std::move(make)) {}

  // A slot for `ringer`'s rings of (or datagrams to) `handle`, owned by
  // `owner`, with `priv_flags`. Nullopt if the ringer holds one already, or none can be
  // had (channels or slots used up, no memory: *error says which); rings
  // then keep going through the core, which is always correct.
  // *first_refusal (if given) says whether this refusal is the first since
  // the peer that reached the bound last had room under it: the one to
  // log, so that a bound is reported once, not once per ring.
  std::optional<RingGrant> grant(uint64_t ringer, uint64_t owner, vmci_handle handle,
                                 uint32_t priv_flags, std::string* error,
                                 bool* first_refusal = nullptr);
  // The handle is gone: rings of (datagrams through) its slots are refused
  // from now on.
  void revoke(vmci_handle handle);
  // hostpeer has queued `count` deliveries for `owner` so far: written into
  // each channel it owns (RingChannel::owner_deliveries), for its ringers'
  // barrier records; or only into the channel `ringer` rings `owner`
  // through, if there is one. For owners that said kFeatureHostLanes.
  void publish_owner_deliveries(uint64_t owner, uint64_t count);
  void publish_owner_deliveries(uint64_t ringer, uint64_t owner, uint64_t count);
  // The peer is gone (or its doorbells' handles changed): every channel it
  // is a side of is revoked and closed. Returns them, to tell the other side.
  std::vector<ClosedRingChannel> close_all(uint64_t peer);

  size_t channel_count() const { return channels_.size(); }
  const Refusals& refusals() const { return refusals_; }
  size_t slot_count() const;
  // Slots granted now for `handle` (a doorbell or a datagram handle).
  size_t slots_for(vmci_handle handle) const;

 private:
  struct Slot {
    uint64_t handle_key;
    uint32_t priv_flags;
  };
  struct Channel {
    uint32_t id;
    uint64_t ringer;
    uint64_t owner;
    std::shared_ptr<RingChannelFile> memory;
    std::map<uint32_t, Slot> slots;  // granted, by slot number
    // The generation each slot was last granted with (not read from the
    // page, which the ringer can write).
    std::vector<uint32_t> generations;  // kRingChannelSlots of them
  };

  enum class Bound { kOwnerChannels, kRingerChannels, kSlots, kMemory };

  Channel* find(uint64_t ringer, uint64_t owner);
  Channel* find_or_make(uint64_t ringer, uint64_t owner, bool* made, std::string* error,
                        std::optional<std::pair<uint64_t, Bound>>* refused);
  // Counts the refusal; true if `peer` had not been refused for `bound`
  // since it last had room.
  bool refuse(uint64_t peer, Bound bound);

  RingChannelFactory make_;
  std::map<uint32_t, Channel> channels_;  // by id
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> by_sides_;  // (ringer, owner) -> id
  std::multimap<uint64_t, uint32_t> by_owner_;                   // owner -> ids
  std::map<uint64_t, size_t> owned_, rung_;  // channels per owner, per ringer
  std::set<std::pair<uint64_t, Bound>> reported_;  // refused since they last had room
  Refusals refusals_;
  uint32_t next_id_ = 1;
};

}  // namespace vmci::host
