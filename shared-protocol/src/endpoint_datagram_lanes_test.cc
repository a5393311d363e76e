#include "vmci/proto/endpoint_datagram_lanes.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

constexpr vmci_id kGuest = 40;
const vmci_handle kHandle = VMCI_MAKE_HANDLE(2, 7);

std::shared_ptr<RingChannel> new_channel() {
  std::string error;
  auto memory = SharedMemory::anonymous(kRingChannelFileSize, &error);
  auto* page = reinterpret_cast<RingChannel*>(memory->data());
  return std::shared_ptr<RingChannel>(std::move(memory), page);
}

struct Sent {
  std::shared_ptr<RingChannel> channel = new_channel();
  LaneWriter writer{channel.get()};
  uint32_t generation = grant_slot(channel.get(), 3, 0);

  void send(uint32_t value, vmci_handle dst = kHandle, vmci_id src_cid = kGuest) {
    vmci_datagram h{};
    h.dst = dst;
    h.src = VMCI_MAKE_HANDLE(src_cid, 1);
    h.payload_size = sizeof value;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    ASSERT_NE(writer.send(3, generation, h, {bytes, sizeof value}, kMaxLaneCap), LaneSend::kFull);
  }
  EndpointDatagramLanes::Grant grant(uint32_t channel_id = 1) const {
    return {channel_id, channel, 3, generation, kHandle, kGuest};
  }
};

struct Taken {
  std::vector<uint32_t> values;
  std::vector<std::string> refused;
  EndpointDatagramLanes::Drained drain(EndpointDatagramLanes& lanes, size_t max = 1000) {
    return lanes.drain(
        max,
        [&](std::vector<uint8_t>& dg) {
          uint32_t v;
          std::memcpy(&v, dg.data() + sizeof(vmci_datagram), sizeof v);
          values.push_back(v);
        },
        [&](const std::string& why) { refused.push_back(why); });
  }
};

TEST(EndpointDatagramLanes, DatagramsWaitInTheLaneUntilTheirGrantIsAdded) {
  Sent sent;
  sent.send(1);
  sent.send(2);
  EndpointDatagramLanes lanes;
  Taken taken;
  taken.drain(lanes);
  EXPECT_TRUE(taken.values.empty());  // no lane known yet
  // A grant for another slot of the channel: the lane is known, slot 3 not.
  auto other = sent.grant();
  other.slot = 9;
  lanes.add_grant(other);
  taken.drain(lanes);
  EXPECT_TRUE(taken.values.empty());
  lanes.add_grant(sent.grant());
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1, 2}));
  EXPECT_TRUE(taken.refused.empty());
}

TEST(EndpointDatagramLanes, ASpoofedSourceOrAnotherHandleIsDroppedAndTheRestGoOn) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  sent.send(1);
  sent.send(2, kHandle, kGuest + 1);               // names another context
  sent.send(3, VMCI_MAKE_HANDLE(2, 8));            // another of the owner's handles
  sent.send(4);
  Taken taken;
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1, 4}));
  ASSERT_EQ(taken.refused.size(), 2u);
  EXPECT_NE(taken.refused[0].find("source"), std::string::npos) << taken.refused[0];
  EXPECT_NE(taken.refused[1].find("slot of"), std::string::npos) << taken.refused[1];
}

TEST(EndpointDatagramLanes, DatagramsOfAnEarlierGrantOfTheSlotAreDropped) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  sent.send(1);
  // The handle went and came back: the slot is granted anew.
  revoke_slot(sent.channel.get(), 3);
  sent.generation = grant_slot(sent.channel.get(), 3, sent.generation);
  lanes.add_grant(sent.grant());
  sent.send(2);
  Taken taken;
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{2}));
}

TEST(EndpointDatagramLanes, ACorruptLaneIsLeftAloneAndOthersAreStillRead) {
  Sent bad, good;
  EndpointDatagramLanes lanes;
  lanes.add_grant(bad.grant(1));
  lanes.add_grant(good.grant(2));
  reinterpret_cast<DatagramLaneControl*>(reinterpret_cast<uint8_t*>(bad.channel.get()) +
                                         kRingChannelSize)
      ->head = 3;  // not a whole record
  good.send(7);
  Taken taken;
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{7}));
  ASSERT_EQ(taken.refused.size(), 1u);
  EXPECT_NE(taken.refused[0].find("corrupt"), std::string::npos);
  bad.send(8);  // not read again
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{7}));
  EXPECT_EQ(taken.refused.size(), 1u);
}

TEST(EndpointDatagramLanes, ADrainTakesAtMostItsShareOfEachLaneAndSaysMoreAreWaiting) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  for (uint32_t i = 0; i < 5; ++i) sent.send(i);
  Taken taken;
  auto drained = taken.drain(lanes, 3);
  EXPECT_EQ(drained.delivered, 3u);
  EXPECT_TRUE(drained.more);
  drained = taken.drain(lanes, 3);
  EXPECT_EQ(drained.delivered, 2u);
  EXPECT_FALSE(drained.more);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{0, 1, 2, 3, 4}));
}

// Found by the soak: a guest that sent, was told "sent", and disconnected
// before the host had read its lane lost those datagrams.
TEST(EndpointDatagramLanes, AClosedChannelsLaneIsHandedOverWholeThenForgotten) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  for (uint32_t i = 0; i < 1000; ++i) sent.send(i);  // more than one drain's share
  Taken taken;
  const size_t handed = lanes.close_channel(
      1,
      [&](std::vector<uint8_t>& dg) {
        uint32_t v;
        std::memcpy(&v, dg.data() + sizeof(vmci_datagram), sizeof v);
        taken.values.push_back(v);
      },
      [&](const std::string& why) { taken.refused.push_back(why); });
  EXPECT_EQ(handed, 1000u);
  ASSERT_EQ(taken.values.size(), 1000u);
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(taken.values[i], i);
  EXPECT_EQ(lanes.lane_count(), 0u);
  sent.send(1000);  // not read again
  taken.drain(lanes);
  EXPECT_EQ(taken.values.size(), 1000u);
}

}  // namespace
}  // namespace vmci::proto
