#include "vmci/proto/frame.h"

#include "vmci/proto/layout.h"

namespace vmci::proto {
namespace {

// What a frame type may carry: its direction and its body size range.
struct FrameRule {
  FrameType type;
  Direction direction;
  uint32_t min_body;
  uint32_t max_body;
};

constexpr FrameRule kRules[] = {
    {FrameType::kHello, Direction::kToHostpeer, sizeof(HelloBody), sizeof(HelloBody)},
    {FrameType::kWelcome, Direction::kToPeer, sizeof(WelcomeBody),
     sizeof(WelcomeBody) + kMaxReasonSize},
    {FrameType::kDatagram, Direction::kToHostpeer, sizeof(vmci_datagram), kMaxFrameBody},
    {FrameType::kResult, Direction::kToPeer, sizeof(ResultBody), kMaxFrameBody},
    {FrameType::kDeliver, Direction::kToPeer, sizeof(vmci_datagram), VMCI_MAX_DG_SIZE},
    {FrameType::kDelivered, Direction::kToHostpeer, sizeof(DeliveredBody), sizeof(DeliveredBody)},
    {FrameType::kHandleCreate, Direction::kToHostpeer, sizeof(HandleCreateBody),
     sizeof(HandleCreateBody)},
    {FrameType::kHandleDestroy, Direction::kToHostpeer, sizeof(HandleDestroyBody),
     sizeof(HandleDestroyBody)},
    {FrameType::kGoodbye, Direction::kToPeer, sizeof(GoodbyeBody),
     sizeof(GoodbyeBody) + kMaxReasonSize},
    {FrameType::kSync, Direction::kToHostpeer, sizeof(DeliveredBody), sizeof(DeliveredBody)},
    {FrameType::kQueuePairAlloc, Direction::kToHostpeer, sizeof(QueuePairAllocBody),
     sizeof(QueuePairAllocBody)},
    {FrameType::kQueuePairDetach, Direction::kToHostpeer, sizeof(QueuePairDetachBody),
     sizeof(QueuePairDetachBody)},
    {FrameType::kDoorbellCreate, Direction::kToHostpeer, sizeof(DoorbellCreateBody),
     sizeof(DoorbellCreateBody)},
    {FrameType::kDoorbellDestroy, Direction::kToHostpeer, sizeof(DoorbellDestroyBody),
     sizeof(DoorbellDestroyBody)},
    {FrameType::kDoorbellNotify, Direction::kToHostpeer, sizeof(DoorbellNotifyBody),
     sizeof(DoorbellNotifyBody)},
    {FrameType::kRingGrant, Direction::kToPeer, sizeof(RingGrantBody), sizeof(RingGrantBody)},
    {FrameType::kRingChannelClosed, Direction::kToPeer, sizeof(RingChannelClosedBody),
     sizeof(RingChannelClosedBody)},
    {FrameType::kStats, Direction::kToHostpeer, sizeof(DeliveredBody), sizeof(DeliveredBody)},
    {FrameType::kIntrospect, Direction::kToHostpeer, sizeof(IntrospectBody),
     sizeof(IntrospectBody)},
    {FrameType::kGuestMemory, Direction::kToHostpeer, sizeof(GuestMemoryBody),
     sizeof(GuestMemoryBody) + kMaxGuestMemoryRegions * sizeof(GuestMemoryRegion)},
    {FrameType::kQueuePairMemory, Direction::kToPeer, sizeof(QueuePairMemoryBody),
     sizeof(QueuePairMemoryBody) + kMaxQueuePairExtents * sizeof(QueuePairExtent)},
};

// The descriptors a frame of this type may carry (FrameHeader::flags).
uint16_t max_descriptors(FrameType type) {
  switch (type) {
    case FrameType::kResult:
      return 2;
    case FrameType::kWelcome:
    case FrameType::kRingGrant:
      return 1;
    case FrameType::kGuestMemory:
      return kMaxGuestMemoryFiles;
    case FrameType::kQueuePairMemory:
      return kMaxFrameDescriptors;
    default:
      return 0;
  }
}

const FrameRule* rule_for(uint16_t type) {
  for (const auto& rule : kRules) {
    if (static_cast<uint16_t>(rule.type) == type) return &rule;
  }
  return nullptr;
}

}  // namespace

std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kWelcome:
      return "welcome";
    case FrameType::kDatagram:
      return "datagram";
    case FrameType::kResult:
      return "result";
    case FrameType::kDeliver:
      return "deliver";
    case FrameType::kDelivered:
      return "delivered";
    case FrameType::kHandleCreate:
      return "handle-create";
    case FrameType::kHandleDestroy:
      return "handle-destroy";
    case FrameType::kGoodbye:
      return "goodbye";
    case FrameType::kSync:
      return "sync";
    case FrameType::kQueuePairAlloc:
      return "queue-pair-alloc";
    case FrameType::kQueuePairDetach:
      return "queue-pair-detach";
    case FrameType::kDoorbellCreate:
      return "doorbell-create";
    case FrameType::kDoorbellDestroy:
      return "doorbell-destroy";
    case FrameType::kDoorbellNotify:
      return "doorbell-notify";
    case FrameType::kRingGrant:
      return "ring-grant";
    case FrameType::kRingChannelClosed:
      return "ring-channel-closed";
    case FrameType::kStats:
      return "stats";
    case FrameType::kGuestMemory:
      return "guest-memory";
    case FrameType::kQueuePairMemory:
      return "queue-pair-memory";
    case FrameType::kIntrospect:
      return "introspect";
  }
  return "unknown";
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kGuest:
      return "guest";
    case Role::kHost:
      return "host";
  }
  return "unknown";
}

FrameCheck check_frame_header(const FrameHeader& header, Direction direction) {
  if (header.magic != kFrameMagic) return {false, "bad frame magic"};
  const FrameRule* rule = rule_for(header.type);
  if (rule == nullptr) {
    return {false, "unknown frame type " + std::to_string(header.type)};
  }
  const std::string name(frame_type_name(rule->type));
  if (rule->direction != direction) {
    return {false, "frame type " + name + " sent in the wrong direction"};
  }
  const uint16_t max_flags = max_descriptors(rule->type);
  if (header.flags > max_flags) {
    return {false, "frame " + name + " has flags " + std::to_string(header.flags)};
  }
  if (header.body_size < rule->min_body || header.body_size > rule->max_body) {
    return {false, "frame " + name + " body of " + std::to_string(header.body_size) +
                       " bytes (allowed " + std::to_string(rule->min_body) + ".." +
                       std::to_string(rule->max_body) + ")"};
  }
  return {true, {}};
}

namespace {

template <typename Fixed, typename Entry>
std::vector<uint8_t> encode_table(const Fixed& fixed, std::span<const Entry> entries) {
  std::vector<uint8_t> out(sizeof(Fixed) + entries.size_bytes());
  std::memcpy(out.data(), &fixed, sizeof fixed);
  if (!entries.empty()) std::memcpy(out.data() + sizeof fixed, entries.data(), entries.size_bytes());
  return out;
}

// `count` entries after the fixed part, exactly, and at most `max`.
template <typename Fixed, typename Entry>
bool decode_table(std::span<const uint8_t> body, uint32_t Fixed::*count, uint32_t max,
                  const char* what, Fixed* fixed, std::vector<Entry>* entries,
                  std::string* error) {
  if (body.size() < sizeof(Fixed)) {
    *error = std::string(what) + " body of " + std::to_string(body.size()) + " bytes";
    return false;
  }
  std::memcpy(fixed, body.data(), sizeof(Fixed));
  const uint64_t n = fixed->*count;
  if (n > max) {
    *error = std::string(what) + " has " + std::to_string(n) + " entries (at most " +
             std::to_string(max) + ")";
    return false;
  }
  if (body.size() != sizeof(Fixed) + n * sizeof(Entry)) {
    *error = std::string(what) + " of " + std::to_string(n) + " entries in " +
             std::to_string(body.size()) + " bytes";
    return false;
  }
  entries->resize(n);
  if (n != 0) std::memcpy(entries->data(), body.data() + sizeof(Fixed), n * sizeof(Entry));
  return true;
}

}  // namespace

std::vector<uint8_t> encode_guest_memory(uint32_t flags,
                                         std::span<const GuestMemoryRegion> regions) {
  return encode_table(GuestMemoryBody{static_cast<uint32_t>(regions.size()), flags}, regions);
}

bool decode_guest_memory(std::span<const uint8_t> body, GuestMemoryBody* fixed,
                         std::vector<GuestMemoryRegion>* regions, std::string* error) {
  return decode_table(body, &GuestMemoryBody::region_count, kMaxGuestMemoryRegions,
                      "guest-memory", fixed, regions, error);
}

std::vector<uint8_t> encode_queue_pair_memory(vmci_handle handle,
                                              std::span<const QueuePairExtent> extents) {
  return encode_table(QueuePairMemoryBody{handle, static_cast<uint32_t>(extents.size()), 0},
                      extents);
}

bool decode_queue_pair_memory(std::span<const uint8_t> body, QueuePairMemoryBody* fixed,
                              std::vector<QueuePairExtent>* extents, std::string* error) {
  return decode_table(body, &QueuePairMemoryBody::extent_count, kMaxQueuePairExtents,
                      "queue-pair-memory", fixed, extents, error);
}

std::vector<uint8_t> encode_frame(FrameType type, uint32_t request_id,
                                  std::span<const uint8_t> body, uint16_t flags) {
  const FrameHeader header{kFrameMagic, static_cast<uint16_t>(type), flags,
                           static_cast<uint32_t>(body.size()), request_id};
  std::vector<uint8_t> out(sizeof header + body.size());
  std::memcpy(out.data(), &header, sizeof header);
  if (!body.empty()) std::memcpy(out.data() + sizeof header, body.data(), body.size());
  return out;
}

}  // namespace vmci::proto
