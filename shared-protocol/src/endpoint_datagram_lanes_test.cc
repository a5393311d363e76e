#include "vmci/proto/endpoint_datagram_lanes.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_support/anonymous_ring_channel.h"
#include "vmci/proto/log_rate_limit.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

constexpr vmci_id kGuest = 40;
const vmci_handle kHandle = VMCI_MAKE_HANDLE(2, 7);

struct Sent {
  std::shared_ptr<RingChannel> channel = test_support::anonymous_ring_channel();
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

using Refusal = EndpointDatagramLanes::Refusal;

struct Taken {
  std::vector<uint32_t> values;
  std::vector<std::string> refused;
  std::vector<Refusal> reasons;  // of each refused, in turn
  std::vector<vmci_id> ringers;
  EndpointDatagramLanes::Refused refuser() {
    return [this](vmci_id ringer_cid, Refusal reason, const std::string& why) {
      refused.push_back(why);
      reasons.push_back(reason);
      ringers.push_back(ringer_cid);
    };
  }
  EndpointDatagramLanes::Drained drain(EndpointDatagramLanes& lanes, size_t max = 1000) {
    return lanes.drain(
        max,
        [&](std::vector<uint8_t>& dg) {
          uint32_t v;
          std::memcpy(&v, dg.data() + sizeof(vmci_datagram), sizeof v);
          values.push_back(v);
        },
        refuser());
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
  EXPECT_EQ(taken.reasons,
            (std::vector<Refusal>{Refusal::kForgedSource, Refusal::kOtherDestination}));
  EXPECT_EQ(taken.ringers, (std::vector<vmci_id>{kGuest, kGuest}));
}

TEST(EndpointDatagramLanes, AHostsLaneHandsOverOnlyItsHandlesDatagramsToThisContext) {
  Sent sent;
  EndpointDatagramLanes lanes;
  constexpr vmci_id kOwner = 50;
  const vmci_handle host_handle = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 1);
  EndpointDatagramLanes::Grant grant = sent.grant();
  grant.handle = host_handle;
  grant.ringer_cid = VMCI_HOST_CONTEXT_ID;
  grant.kind = SlotKind::kDatagramFromHost;
  grant.owner_cid = kOwner;
  lanes.add_grant(grant);
  sent.send(1, VMCI_MAKE_HANDLE(kOwner, 9), VMCI_HOST_CONTEXT_ID);
  sent.send(2, VMCI_MAKE_HANDLE(kOwner, 9), 3);                     // another source
  sent.send(3, VMCI_MAKE_HANDLE(kOwner + 1, 9), VMCI_HOST_CONTEXT_ID);  // another context
  sent.send(4, VMCI_MAKE_HANDLE(kOwner, 77), VMCI_HOST_CONTEXT_ID);  // any of its resources
  Taken taken;
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1, 4}));
  EXPECT_EQ(taken.reasons,
            (std::vector<Refusal>{Refusal::kForgedSource, Refusal::kOtherDestination}));
}

TEST(EndpointDatagramLanes, ALaneStopsAtABarrierUntilThatManyDeliveriesAreTaken) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  sent.send(1);
  sent.channel->owner_deliveries = 2;  // hostpeer delivered twice since
  sent.send(2);
  sent.send(3);
  Taken taken;
  EXPECT_TRUE(taken.drain(lanes).waiting);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1}));
  EXPECT_TRUE(lanes.delivery_taken());  // a lane waits: scan again
  EXPECT_TRUE(taken.drain(lanes).waiting);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1}));
  EXPECT_TRUE(lanes.delivery_taken());
  EXPECT_FALSE(taken.drain(lanes).waiting);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_FALSE(lanes.delivery_taken());  // nothing waits
  // A new connection counts from 0 again: its third delivery is awaited.
  lanes.restart_delivery_count();
  sent.channel->owner_deliveries = 3;
  sent.send(4);
  EXPECT_TRUE(taken.drain(lanes).waiting);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{1, 2, 3}));
  taken.values.clear();
  lanes.drain_before_delivery([&](std::vector<uint8_t>&) { taken.values.push_back(0); },
                              taken.refuser());
  EXPECT_TRUE(taken.values.empty());  // still held at the barrier
  EXPECT_TRUE(taken.refused.empty());
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
  EXPECT_EQ(taken.reasons, std::vector<Refusal>{Refusal::kCorruptLane});
  bad.send(8);  // not read again
  taken.drain(lanes);
  EXPECT_EQ(taken.values, (std::vector<uint32_t>{7}));
  EXPECT_EQ(taken.refused.size(), 1u);
}

// What its owners do (the guest driver's host connections, embedded host
// endpoints): a ringer that forges 100000 records makes its owner write a
// burst of lines, then one that counts the rest, when its lane closes.
TEST(EndpointDatagramLanes, AForgersFloodIsLoggedAsABurstThenOneCountOnceItsLaneCloses) {
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  std::vector<std::string> log;
  LogRateLimit limit([&](const LogSuppressed& s) {
    log.push_back("context " + std::to_string(s.peer) + ": " + std::to_string(s.lines) + " more (" +
                  EndpointDatagramLanes::name(static_cast<Refusal>(s.reason)) + ")");
  });
  const auto refused = [&](vmci_id ringer_cid, Refusal reason, const std::string& why) {
    limit.write(ringer_cid, static_cast<uint32_t>(reason), [&] { log.push_back(why); });
  };
  const auto deliver = [](std::vector<uint8_t>&) { FAIL() << "a forged datagram was delivered"; };
  for (uint32_t batch = 0; batch < 100; ++batch) {  // what the lane holds at once, 100 times
    for (uint32_t i = 0; i < 1000; ++i) sent.send(i, kHandle, kGuest + 1);
    lanes.drain(1000, deliver, refused);
  }
  EXPECT_EQ(log.size(), LogRateLimitOptions{}.burst);
  vmci_id ringer = VMCI_INVALID_ID;
  lanes.close_channel(1, deliver, refused, &ringer);
  limit.forget(ringer);
  ASSERT_EQ(log.size(), LogRateLimitOptions{}.burst + 1);
  EXPECT_EQ(log.back(), "context 40: 99990 more (forged source)");
  EXPECT_EQ(limit.size(), 0u);
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
  vmci_id ringer = VMCI_INVALID_ID;
  const size_t handed = lanes.close_channel(
      1,
      [&](std::vector<uint8_t>& dg) {
        uint32_t v;
        std::memcpy(&v, dg.data() + sizeof(vmci_datagram), sizeof v);
        taken.values.push_back(v);
      },
      taken.refuser(), &ringer);
  EXPECT_EQ(ringer, kGuest);  // its owner forgets what it counted of the ringer
  EXPECT_EQ(handed, 1000u);
  ASSERT_EQ(taken.values.size(), 1000u);
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(taken.values[i], i);
  EXPECT_EQ(lanes.lane_count(), 0u);
  sent.send(1000);  // not read again
  taken.drain(lanes);
  EXPECT_EQ(taken.values.size(), 1000u);
}

TEST(EndpointDatagramLanes, AClosedChannelsDrainEndsWhereTheLaneEndedWhenItClosed) {
  // A ringer that still has the page mapped keeps writing while the owner
  // drains the closed lane: none of that is read, so the drain ends.
  Sent sent;
  EndpointDatagramLanes lanes;
  lanes.add_grant(sent.grant());
  for (uint32_t i = 0; i < 100; ++i) sent.send(i);
  Taken taken;
  uint32_t written_after_close = 0;
  const size_t handed = lanes.close_channel(
      1,
      [&](std::vector<uint8_t>& dg) {
        uint32_t v;
        std::memcpy(&v, dg.data() + sizeof(vmci_datagram), sizeof v);
        taken.values.push_back(v);
        if (written_after_close < 5000) sent.send(100000 + written_after_close++);
      },
      [&](vmci_id, Refusal, const std::string& why) { taken.refused.push_back(why); });
  EXPECT_EQ(written_after_close, 100u);  // one per datagram handed over
  EXPECT_EQ(handed, 100u);
  ASSERT_EQ(taken.values.size(), 100u);
  for (uint32_t i = 0; i < 100; ++i) ASSERT_EQ(taken.values[i], i);
  EXPECT_TRUE(taken.refused.empty());
}

}  // namespace
}  // namespace vmci::proto
