// frame.h: the control channel between hostpeer and its peers.
//
// A Unix stream socket carries frames: a 16-byte FrameHeader, then
// body_size bytes. The reader checks the header (check_frame_header) before
// it reads the body, so a peer cannot make the other side allocate or wait
// for more than kMaxFrameBody bytes. All integers are little-endian.
//
// The first exchange: the peer sends kHello, hostpeer answers kWelcome. Same
// major version required, any minor; a refusal carries a status and a reason
// that names both versions. After that:
//
//   peer -> hostpeer  kDatagram (a whole VMCI datagram; hypercalls are
//                     datagrams to context 0)             -> kResult
//                     kHandleCreate / kHandleDestroy (host peers only; host
//                     datagram handles live in hostpeer)   -> kResult
//                     kDelivered (delivery N is taken for its callback;
//                     none from a peer of kFeatureCountedDeliveries)
//                     kSync (answered once everything sent before it is
//                     handled)                             -> kResult
//                     kQueuePairAlloc / kQueuePairDetach (host peers only:
//                     the host's broker calls; guests use the
//                     VMCI_QUEUEPAIR_* hypercalls)         -> kResult
//                     kDoorbellCreate / kDoorbellDestroy / kDoorbellNotify
//                     (host peers only; guests use the VMCI_DOORBELL_*
//                     hypercalls)                          -> kResult
//                     kStats (host peers only: what hostpeer holds, to
//                     check that nothing leaks)            -> kResult + StatsBody
//                     kGuestMemory (guests that said kFeatureGuestMemory
//                     only: the guest's RAM as file regions, the
//                     descriptors by SCM_RIGHTS; 2.1)      -> kResult
//                     kIntrospect (host peers only: a snapshot of what
//                     hostpeer holds, vmci/introspection.h; 2.2; send it
//                     only to a hostpeer whose welcome says 2.2 or
//                     later; IntrospectBody)               -> kResult + JSON
//   hostpeer -> peer  kDeliver (a datagram for this peer, request_id N)
//                     kRingGrant (a ring-channel slot, the doorbell and
//                     datagram fast path: vmci/proto/ring_channel.h; to the
//                     ringer before the result of the notify or send it
//                     follows)
//                     kRingChannelClosed (forget a ring channel)
//                     kQueuePairMemory (to a host peer: a queue pair's
//                     memory as extents of guest RAM files, the
//                     descriptors by SCM_RIGHTS; before the result of the
//                     alloc that attached to a guest-memory pair, or when a
//                     guest-memory guest attached to a pair the host
//                     created; 2.1)
//                     kGoodbye (the connection ends, with a reason)
//
// Every request carries a request_id that its kResult repeats. A kResult of
// a successful queue-pair alloc (a hypercall or kQueuePairAlloc) carries
// file descriptors as SCM_RIGHTS with its first byte; FrameHeader::flags
// then says how many: the pair's memory (none for a pair whose memory is
// the guest's own pages, to that guest; to a host peer a kQueuePairMemory
// frame carries it then), and for a host peer its status page
// (vmci/proto/queue.h). A kWelcome that admits the peer carries one:
// the connection's doorbell notify memory (vmci/proto/notify_memory.h). So
// does the first kRingGrant of a channel to a peer: the channel's page.
// kGuestMemory and kQueuePairMemory carry theirs likewise, their count in
// FrameHeader::flags.
//
// Versions: the major version changes when a peer of the other major
// version could not work with this one; a minor version adds what a peer
// asks for (a hello feature) or what only a peer that asked for it is sent,
// so peers of any two minor versions of one major work together.
// 2.1 added HelloBody::features, kGuestMemory and kQueuePairMemory; 2.2
// kIntrospect; 2.3 kFeatureHostLanes, with SlotKind::kDatagramFromHost and
// RingGrantBody::owner_cid; 2.4 the snapshot of kIntrospect in pieces
// (IntrospectBody) for peers of 2.4 or later; 2.5 kFeatureCountedDeliveries.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vmci/vmci_call_defs.h"
#include "vmci/role.h"

namespace vmci::proto {

inline constexpr uint16_t kProtocolMajor = 2;
inline constexpr uint16_t kProtocolMinor = 5;
inline constexpr uint32_t kFrameMagic = 0x50434d56;  // "VMCP" on the wire
// The largest body a peer may send: a queue-pair alloc hypercall of a
// 128 MiB pair with 64-bit page numbers (64 + 32770 * 8 bytes).
inline constexpr uint32_t kMaxFrameBody = 288 * 1024;
inline constexpr uint32_t kMaxReasonSize = 1024;

enum class FrameType : uint16_t {
  kHello = 1,
  kWelcome = 2,
  kDatagram = 3,
  kResult = 4,
  kDeliver = 5,
  kDelivered = 6,
  kHandleCreate = 7,
  kHandleDestroy = 8,
  kGoodbye = 9,
  kSync = 10,
  kQueuePairAlloc = 11,
  kQueuePairDetach = 12,
  kDoorbellCreate = 13,
  kDoorbellDestroy = 14,
  kDoorbellNotify = 15,
  kRingGrant = 16,
  kRingChannelClosed = 17,
  kStats = 18,
  kGuestMemory = 19,      // 2.1
  kQueuePairMemory = 20,  // 2.1
  kIntrospect = 21,       // 2.2
};

// kResult, kWelcome, kRingGrant, kGuestMemory and kQueuePairMemory only:
// the number of descriptors sent with the frame (FrameHeader::flags). A
// kResult carries at most 2, a kWelcome and a kRingGrant at most 1.
inline constexpr uint16_t kMaxFrameDescriptors = 8;

std::string_view frame_type_name(FrameType type);

struct FrameHeader {
  uint32_t magic;
  uint16_t type;
  uint16_t flags;  // zero, except a kResult's descriptor count
  uint32_t body_size;
  uint32_t request_id;
};

// The connection's role (vmci/role.h), as the hello carries it.
using Role = vmci::Role;
std::string_view role_name(Role role);

// HelloBody::features (2.1; a 2.0 peer sends 0).
enum HelloFeature : uint8_t {
  // This guest supplies queue-pair memory as its own pages: its
  // VMCI_QUEUEPAIR_ALLOC hypercalls carry guest page numbers, translated
  // through the map it sends with kGuestMemory. Guests only.
  kFeatureGuestMemory = 1,
  // Never grant ring channels involving this connection, as ringer or as
  // owner: every ring of its doorbells goes through hostpeer (which sets
  // its notify memory's bitmap), and so do its sends and notifies.
  kFeatureNoRingChannels = 2,
  // Datagram lanes from hosts to guests (2.3): a guest saying it reads
  // SlotKind::kDatagramFromHost lanes it owns, a host that it sends
  // through those it is granted. Both sides must say it.
  kFeatureHostLanes = 4,
  // This endpoint counts the deliveries it reaches in its notify memory
  // (NotifyMemory::deliveries_reached) instead of a kDelivered frame each
  // (2.5): it does so once hostpeer's welcome says 2.5 or later.
  kFeatureCountedDeliveries = 8,
};
inline constexpr uint8_t kKnownFeatures =
    kFeatureGuestMemory | kFeatureNoRingChannels | kFeatureHostLanes | kFeatureCountedDeliveries;

struct HelloBody {
  uint16_t major;
  uint16_t minor;
  uint8_t role;      // Role
  uint8_t features;  // HelloFeature bits (2.1)
  uint8_t reserved[2];
  vmci_id requested_cid;  // VMCI_INVALID_ID: let hostpeer choose (guests only)
  uint32_t priv_flags;    // the guest context's privileges: 0 or RESTRICTED
};

// Followed by up to kMaxReasonSize bytes of UTF-8 text when status < 0.
struct WelcomeBody {
  uint16_t major;
  uint16_t minor;
  int32_t status;  // VMCI_SUCCESS, or why the peer was refused
  vmci_id context_id;
  uint32_t reserved;
};

// A kResult's body; the answer to kStats is followed by a StatsBody, the
// answer to kIntrospect by the snapshot's JSON (at most kMaxFrameBody in all;
// see IntrospectBody).
struct ResultBody {
  int64_t result;      // what the kernel API call returns
  vmci_handle handle;  // kHandleCreate: the handle created
};

// The most snapshot bytes one answer to kIntrospect carries.
inline constexpr uint32_t kMaxIntrospectPiece = kMaxFrameBody - sizeof(ResultBody);

// What hostpeer holds and has done (the answer to kStats). After every peer
// of a test went away, the holdings are back to what they were before.
struct StatsBody {
  // Held now.
  uint64_t guest_contexts;
  uint64_t host_connections;
  uint64_t host_datagram_handles;
  uint64_t queue_pairs;
  uint64_t queue_pair_bytes;  // their memory, headers included
  uint64_t doorbells;
  uint64_t ring_channels;
  uint64_t ring_grants;
  uint64_t pending_datagrams;
  uint64_t pending_datagram_bytes;
  // Counted since start.
  uint64_t datagrams_routed;
  uint64_t events_sent;
  uint64_t doorbells_rung;  // through hostpeer, not through ring channels
};

struct DeliveredBody {
  uint64_t reserved;
};

// kIntrospect's request. From a peer of 2.4 or later: offset 0 takes a new
// snapshot, which hostpeer keeps for the connection, and answers its first
// piece; a later offset answers the kept snapshot's bytes from there. The
// answer's result is the snapshot's whole size in bytes, the piece (at most
// kMaxIntrospectPiece bytes) follows the ResultBody; an offset past the
// end is VMCI_ERROR_INVALID_ARGS. A peer of 2.2 or 2.3 sends 0 and gets
// the whole snapshot with result VMCI_SUCCESS, or VMCI_ERROR_NO_RESOURCES
// if it does not fit in one frame.
struct IntrospectBody {
  uint64_t offset;
};

struct HandleCreateBody {
  vmci_id resource;  // VMCI_INVALID_ID: any
  uint32_t flags;
  uint32_t priv_flags;
  uint32_t reserved;
};

struct HandleDestroyBody {
  vmci_handle handle;
};

// A host's vmci_qpair_alloc; sizes from the host's own view.
struct QueuePairAllocBody {
  vmci_handle handle;  // invalid: hostpeer picks one (in the result)
  vmci_id peer;
  uint32_t flags;
  uint32_t priv_flags;
  uint32_t reserved;
  uint64_t produce_size;
  uint64_t consume_size;
};

struct QueuePairDetachBody {
  vmci_handle handle;
};

// A host's doorbell, bound to its notify-memory index.
struct DoorbellCreateBody {
  vmci_id resource;  // VMCI_INVALID_ID: any (the result has the handle)
  uint32_t priv_flags;
  uint64_t notify_index;
};

struct DoorbellDestroyBody {
  vmci_handle handle;
};

struct DoorbellNotifyBody {
  vmci_handle handle;
  uint32_t priv_flags;
  uint32_t reserved;
};

// kGuestMemory: the guest's RAM, replacing the map it sent before (pairs
// already made keep the memory they were given). Followed by region_count
// GuestMemoryRegions; the descriptors (at most kMaxGuestMemoryFiles: read
// and write, sealed against shrinking) come by SCM_RIGHTS, their count in
// FrameHeader::flags. Region i is guest-physical [gpa, gpa + size), which
// is bytes [file_offset, file_offset + size) of descriptor fd_index; gpa,
// size and file_offset are multiples of 4096 and regions do not overlap.
struct GuestMemoryBody {
  uint32_t region_count;  // at most kMaxGuestMemoryRegions
  uint32_t flags;         // kGuestMemoryPpn64
};
inline constexpr uint32_t kGuestMemoryPpn64 = 1;  // the alloc's page numbers are u64
inline constexpr uint32_t kMaxGuestMemoryRegions = 64;
inline constexpr uint16_t kMaxGuestMemoryFiles = kMaxFrameDescriptors;

struct GuestMemoryRegion {
  uint64_t gpa;
  uint64_t size;
  uint64_t file_offset;
  uint32_t fd_index;
  uint32_t reserved;
};

// kQueuePairMemory: the memory of queue pair `handle`, laid out as the
// guest sees it (vmci/proto/queue.h's QueuePairLayout), as extent_count
// QueuePairExtents that follow, in order: extent i is the next page_count
// pages of the pair, at file_offset of descriptor fd_index. The
// descriptors come by SCM_RIGHTS, their count in FrameHeader::flags.
struct QueuePairMemoryBody {
  vmci_handle handle;
  uint32_t extent_count;  // at most kMaxQueuePairExtents
  uint32_t reserved;
};
struct QueuePairExtent {
  uint64_t file_offset;  // a multiple of 4096
  uint32_t page_count;
  uint32_t fd_index;
};
// One per page of a 128 MiB pair, headers included.
inline constexpr uint32_t kMaxQueuePairExtents = 128 * 1024 * 1024 / 4096 + 2;

// Which end of a ring channel a frame speaks to.
enum class RingSide : uint8_t { kRinger = 1, kOwner = 2 };
// What a ring-channel slot is for: a doorbell's rings, or a datagram
// handle's datagrams (written into the channel's datagram lane:
// vmci/proto/datagram_lane.h).
// kDatagramFromHost (2.3): a host datagram handle's datagrams to the
// owner's context (any of its resources), for peers that said
// kFeatureHostLanes.
enum class SlotKind : uint8_t { kDoorbell = 1, kDatagram = 2, kDatagramFromHost = 3 };

// To the ringer: its rings of doorbell `handle` with `priv_flags` (a host
// caller's flags; 0 for guests) may set `slot` of the channel; or, for a
// datagram slot, its datagrams to datagram handle `handle` may go into the
// channel's lane tagged with `slot` and `generation`, while fewer than
// `lane_cap` datagram bytes are pending there; for a kDatagramFromHost
// slot, its datagrams from its host datagram handle `handle` to context
// `owner_cid`. To the handle's owner: rings in `slot` (or lane datagrams
// tagged) with `generation` are the handle's, from context `ringer_cid`
// (kDatagramFromHost: datagrams from host handle `handle` to its own
// context `owner_cid`). The first grant of a channel to a peer carries the
// channel's memory (flags = 1).
struct RingGrantBody {
  uint32_t channel_id;
  uint32_t slot;
  uint32_t generation;
  uint8_t side;  // RingSide
  uint8_t kind;  // SlotKind
  uint8_t reserved[2];
  vmci_handle handle;
  uint32_t priv_flags;
  vmci_id ringer_cid;
  uint32_t lane_cap;  // datagram slots: pending bytes a datagram must stay under
  vmci_id owner_cid;  // the channel owner's context (2.3; 0 from older hostpeers)
};

// The channel is gone (a side went): drop its grants and unmap it.
struct RingChannelClosedBody {
  uint32_t channel_id;
  uint8_t side;  // RingSide
  uint8_t reserved[3];
};

// Followed by up to kMaxReasonSize bytes of UTF-8 text.
struct GoodbyeBody {
  int32_t status;
  uint32_t reserved;
};

// kGuestMemory's body: the fixed part, then the regions.
std::vector<uint8_t> encode_guest_memory(uint32_t flags, std::span<const GuestMemoryRegion> regions);
// Splits a kGuestMemory body; false with *error unless it is exactly a
// GuestMemoryBody and region_count (at most kMaxGuestMemoryRegions)
// regions. What the regions say is the reader's to check.
bool decode_guest_memory(std::span<const uint8_t> body, GuestMemoryBody* fixed,
                         std::vector<GuestMemoryRegion>* regions, std::string* error);
// kQueuePairMemory's body likewise.
std::vector<uint8_t> encode_queue_pair_memory(vmci_handle handle,
                                              std::span<const QueuePairExtent> extents);
bool decode_queue_pair_memory(std::span<const uint8_t> body, QueuePairMemoryBody* fixed,
                              std::vector<QueuePairExtent>* extents, std::string* error);

// Which side reads the frame: types are checked against their direction.
enum class Direction { kToHostpeer, kToPeer };

struct FrameCheck {
  bool ok;
  std::string error;  // empty when ok
};

// Checks magic, type (for the direction), flags and body size; the body
// size must be what the type allows (exact for fixed bodies, at most
// kMaxFrameBody otherwise).
FrameCheck check_frame_header(const FrameHeader& header, Direction direction);

// A whole frame: header then body.
std::vector<uint8_t> encode_frame(FrameType type, uint32_t request_id,
                                  std::span<const uint8_t> body, uint16_t flags = 0);

// The bytes of a fixed-size body.
template <typename Body>
  requires std::is_trivially_copyable_v<Body>
std::span<const uint8_t> body_bytes(const Body& body) {
  return std::span(reinterpret_cast<const uint8_t*>(&body), sizeof(Body));
}

// A frame whose body is a fixed-size struct, then `trailer` (reason text).
template <typename Body>
  requires std::is_trivially_copyable_v<Body>
std::vector<uint8_t> encode_frame(FrameType type, uint32_t request_id, const Body& body,
                                  std::string_view trailer = {}, uint16_t flags = 0) {
  std::vector<uint8_t> bytes(sizeof(Body) + trailer.size());
  std::memcpy(bytes.data(), &body, sizeof(Body));
  if (!trailer.empty()) std::memcpy(bytes.data() + sizeof(Body), trailer.data(), trailer.size());
  return encode_frame(type, request_id, std::span<const uint8_t>(bytes), flags);
}

// The fixed part of a body; check_frame_header guarantees it is there.
template <typename Body>
Body decode_body(std::span<const uint8_t> body) {
  Body out;
  std::memcpy(&out, body.data(), sizeof(Body));
  return out;
}

// The text after the fixed part of a body.
inline std::string decode_trailer(std::span<const uint8_t> body, size_t fixed) {
  if (body.size() <= fixed) return {};
  return std::string(reinterpret_cast<const char*>(body.data() + fixed), body.size() - fixed);
}

}  // namespace vmci::proto
