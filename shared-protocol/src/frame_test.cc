#include "vmci/proto/frame.h"

#include <gtest/gtest.h>

namespace vmci::proto {
namespace {

FrameHeader header(FrameType type, uint32_t body_size) {
  return FrameHeader{kFrameMagic, static_cast<uint16_t>(type), 0, body_size, 7};
}

TEST(Frame, EncodeThenDecode) {
  HelloBody hello{kProtocolMajor, kProtocolMinor, static_cast<uint8_t>(Role::kGuest), 0, {}, 77, 0};
  const auto bytes = encode_frame(FrameType::kHello, 9, hello);
  ASSERT_EQ(bytes.size(), sizeof(FrameHeader) + sizeof(HelloBody));
  const auto h = decode_body<FrameHeader>(bytes);
  EXPECT_EQ(h.magic, kFrameMagic);
  EXPECT_EQ(h.type, static_cast<uint16_t>(FrameType::kHello));
  EXPECT_EQ(h.body_size, sizeof(HelloBody));
  EXPECT_EQ(h.request_id, 9u);
  EXPECT_TRUE(check_frame_header(h, Direction::kToHostpeer).ok);
  const auto body = decode_body<HelloBody>(std::span(bytes).subspan(sizeof(FrameHeader)));
  EXPECT_EQ(body.requested_cid, 77u);
  EXPECT_EQ(body.role, static_cast<uint8_t>(Role::kGuest));
}

TEST(Frame, TrailerText) {
  WelcomeBody welcome{kProtocolMajor, kProtocolMinor, VMCI_ERROR_ALREADY_EXISTS, 0, 0};
  const auto bytes = encode_frame(FrameType::kWelcome, 0, welcome, "context 77 is in use");
  const auto body = std::span(bytes).subspan(sizeof(FrameHeader));
  EXPECT_EQ(decode_trailer(body, sizeof(WelcomeBody)), "context 77 is in use");
  EXPECT_EQ(decode_body<WelcomeBody>(body).status, VMCI_ERROR_ALREADY_EXISTS);
}

TEST(Frame, BadMagicIsRefused) {
  auto h = header(FrameType::kDatagram, 24);
  h.magic = 0x12345678;
  const auto check = check_frame_header(h, Direction::kToHostpeer);
  EXPECT_FALSE(check.ok);
  EXPECT_NE(check.error.find("magic"), std::string::npos);
}

TEST(Frame, UnknownTypeIsRefused) {
  for (uint16_t type : {0, 10, 0xffff}) {
    auto h = header(FrameType::kDatagram, 24);
    h.type = type;
    EXPECT_FALSE(check_frame_header(h, Direction::kToHostpeer).ok) << type;
  }
}

TEST(Frame, WrongDirectionIsRefused) {
  EXPECT_FALSE(check_frame_header(header(FrameType::kDeliver, 24), Direction::kToHostpeer).ok);
  EXPECT_FALSE(check_frame_header(header(FrameType::kHello, 16), Direction::kToPeer).ok);
  EXPECT_TRUE(check_frame_header(header(FrameType::kDeliver, 24), Direction::kToPeer).ok);
}

TEST(Frame, NonZeroFlagsAreRefused) {
  auto h = header(FrameType::kDatagram, 24);
  h.flags = 1;
  EXPECT_FALSE(check_frame_header(h, Direction::kToHostpeer).ok);
}

TEST(Frame, BodySizeLimitsPerType) {
  struct Case {
    FrameType type;
    Direction direction;
    uint32_t body;
    bool ok;
  } cases[] = {
      {FrameType::kHello, Direction::kToHostpeer, 16, true},
      {FrameType::kHello, Direction::kToHostpeer, 15, false},
      {FrameType::kHello, Direction::kToHostpeer, 17, false},
      {FrameType::kDatagram, Direction::kToHostpeer, 23, false},
      {FrameType::kDatagram, Direction::kToHostpeer, 24, true},
      {FrameType::kDatagram, Direction::kToHostpeer, kMaxFrameBody, true},
      {FrameType::kDatagram, Direction::kToHostpeer, kMaxFrameBody + 1, false},
      {FrameType::kDatagram, Direction::kToHostpeer, 0xffffffff, false},
      {FrameType::kDelivered, Direction::kToHostpeer, 8, true},
      {FrameType::kDelivered, Direction::kToHostpeer, 0, false},
      {FrameType::kHandleCreate, Direction::kToHostpeer, 16, true},
      {FrameType::kHandleDestroy, Direction::kToHostpeer, 8, true},
      {FrameType::kResult, Direction::kToPeer, 16, true},
      {FrameType::kResult, Direction::kToPeer, 8, false},
      {FrameType::kResult, Direction::kToPeer, kMaxFrameBody, true},  // an introspection
      {FrameType::kResult, Direction::kToPeer, kMaxFrameBody + 1, false},
      {FrameType::kIntrospect, Direction::kToHostpeer, 8, true},
      {FrameType::kIntrospect, Direction::kToPeer, 8, false},
      {FrameType::kIntrospect, Direction::kToHostpeer, 9, false},
      {FrameType::kDeliver, Direction::kToPeer, VMCI_MAX_DG_SIZE, true},
      {FrameType::kDeliver, Direction::kToPeer, VMCI_MAX_DG_SIZE + 1, false},
      {FrameType::kWelcome, Direction::kToPeer, 16 + kMaxReasonSize, true},
      {FrameType::kWelcome, Direction::kToPeer, 16 + kMaxReasonSize + 1, false},
      {FrameType::kGoodbye, Direction::kToPeer, 8, true},
      {FrameType::kSync, Direction::kToHostpeer, 8, true},
      {FrameType::kSync, Direction::kToPeer, 8, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(frame_type_name(c.type)) + " " + std::to_string(c.body));
    EXPECT_EQ(check_frame_header(header(c.type, c.body), c.direction).ok, c.ok);
  }
}

TEST(FrameHeader, OnlyAResultCarriesDescriptorsAndAtMostTwo) {
  FrameHeader h{kFrameMagic, static_cast<uint16_t>(FrameType::kResult), 2, sizeof(ResultBody), 1};
  EXPECT_TRUE(check_frame_header(h, Direction::kToPeer).ok);
  h.flags = 3;
  EXPECT_FALSE(check_frame_header(h, Direction::kToPeer).ok);
  FrameHeader dg{kFrameMagic, static_cast<uint16_t>(FrameType::kDatagram), 1, 24, 1};
  EXPECT_FALSE(check_frame_header(dg, Direction::kToHostpeer).ok);
  FrameHeader alloc{kFrameMagic, static_cast<uint16_t>(FrameType::kQueuePairAlloc), 0,
                    sizeof(QueuePairAllocBody), 1};
  EXPECT_TRUE(check_frame_header(alloc, Direction::kToHostpeer).ok);
  EXPECT_FALSE(check_frame_header(alloc, Direction::kToPeer).ok);
}


TEST(Frame, GuestMemoryFramesOnlyToHostpeerWithUpToEightDescriptors) {
  auto h = header(FrameType::kGuestMemory, sizeof(GuestMemoryBody) + sizeof(GuestMemoryRegion));
  EXPECT_TRUE(check_frame_header(h, Direction::kToHostpeer).ok);
  EXPECT_FALSE(check_frame_header(h, Direction::kToPeer).ok);
  h.flags = kMaxGuestMemoryFiles;
  EXPECT_TRUE(check_frame_header(h, Direction::kToHostpeer).ok);
  h.flags = kMaxGuestMemoryFiles + 1;
  EXPECT_FALSE(check_frame_header(h, Direction::kToHostpeer).ok);
  h = header(FrameType::kGuestMemory,
             sizeof(GuestMemoryBody) + (kMaxGuestMemoryRegions + 1) * sizeof(GuestMemoryRegion));
  EXPECT_FALSE(check_frame_header(h, Direction::kToHostpeer).ok);
}

TEST(Frame, QueuePairMemoryFramesOnlyToPeers) {
  auto h = header(FrameType::kQueuePairMemory,
                  sizeof(QueuePairMemoryBody) + kMaxQueuePairExtents * sizeof(QueuePairExtent));
  h.flags = kMaxFrameDescriptors;
  EXPECT_TRUE(check_frame_header(h, Direction::kToPeer).ok);
  EXPECT_FALSE(check_frame_header(h, Direction::kToHostpeer).ok);
  h.body_size += sizeof(QueuePairExtent);
  EXPECT_FALSE(check_frame_header(h, Direction::kToPeer).ok);
}

TEST(Frame, ResultsCarryAtMostTwoDescriptors) {
  auto h = header(FrameType::kResult, sizeof(ResultBody));
  h.flags = 2;
  EXPECT_TRUE(check_frame_header(h, Direction::kToPeer).ok);
  h.flags = 3;
  EXPECT_FALSE(check_frame_header(h, Direction::kToPeer).ok);
}

TEST(Frame, GuestMemoryBodyRoundTrips) {
  const GuestMemoryRegion regions[] = {{0, 8192, 4096, 0, 0}, {1 << 20, 4096, 0, 1, 0}};
  const auto body = encode_guest_memory(kGuestMemoryPpn64, regions);
  GuestMemoryBody fixed{};
  std::vector<GuestMemoryRegion> out;
  std::string error;
  ASSERT_TRUE(decode_guest_memory(body, &fixed, &out, &error)) << error;
  EXPECT_EQ(fixed.flags, kGuestMemoryPpn64);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].gpa, 1u << 20);
  EXPECT_EQ(out[1].fd_index, 1u);
}

TEST(Frame, BadTableBodiesAreRefused) {
  struct Case {
    const char* name;
    uint32_t count;
    size_t entries;  // actually present
  } cases[] = {
      {"fewer entries than said", 3, 2},
      {"more entries than said", 1, 2},
      {"more than allowed", kMaxGuestMemoryRegions + 1, kMaxGuestMemoryRegions + 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<GuestMemoryRegion> regions(c.entries);
    auto body = encode_guest_memory(0, regions);
    std::memcpy(body.data(), &c.count, sizeof c.count);
    GuestMemoryBody fixed{};
    std::vector<GuestMemoryRegion> out;
    std::string error;
    EXPECT_FALSE(decode_guest_memory(body, &fixed, &out, &error));
    EXPECT_FALSE(error.empty());
  }
  GuestMemoryBody fixed{};
  std::vector<GuestMemoryRegion> out;
  std::string error;
  EXPECT_FALSE(decode_guest_memory(std::vector<uint8_t>(4), &fixed, &out, &error));
}

TEST(Frame, QueuePairMemoryBodyRoundTrips) {
  const QueuePairExtent extents[] = {{4096, 3, 0}, {0, 2, 1}};
  const auto body = encode_queue_pair_memory(VMCI_MAKE_HANDLE(16, 4096), extents);
  QueuePairMemoryBody fixed{};
  std::vector<QueuePairExtent> out;
  std::string error;
  ASSERT_TRUE(decode_queue_pair_memory(body, &fixed, &out, &error)) << error;
  EXPECT_EQ(fixed.handle.resource, 4096u);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].page_count, 3u);
}

TEST(Frame, HelloFeaturesSitInTheOldReservedByte) {
  HelloBody hello{kProtocolMajor, kProtocolMinor, 1, kFeatureGuestMemory, {}, 0, 0};
  uint8_t bytes[sizeof hello];
  std::memcpy(bytes, &hello, sizeof hello);
  EXPECT_EQ(bytes[5], kFeatureGuestMemory);
  EXPECT_GE(kProtocolMinor, 1);
}

}  // namespace
}  // namespace vmci::proto
