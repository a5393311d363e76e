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
    {FrameType::kResult, Direction::kToPeer, sizeof(ResultBody),
     sizeof(ResultBody) + sizeof(StatsBody)},
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
};

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
  const uint16_t max_flags = rule->type == FrameType::kResult ? kMaxFrameDescriptors
                             : rule->type == FrameType::kWelcome || rule->type == FrameType::kRingGrant
                                 ? 1
                                 : 0;
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
