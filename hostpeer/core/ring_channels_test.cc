#include "core/ring_channels.h"

#include <gtest/gtest.h>

#include <atomic>

namespace vmci::host {
namespace {

constexpr vmci_handle kDoorbell = {16, 1024};
constexpr vmci_handle kOther = {16, 1025};

TEST(RingChannels, AGrantMakesOneChannelPerRingerAndOwnerAndASlotPerDoorbell) {
  RingChannels channels;
  std::string error;
  auto a = channels.grant(1, 2, kDoorbell, 0, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_TRUE(a->first_for_ringer && a->first_for_owner);
  EXPECT_NE(a->generation, 0u);
  auto b = channels.grant(1, 2, kOther, 0, &error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->channel_id, a->channel_id);
  EXPECT_NE(b->slot, a->slot);
  EXPECT_FALSE(b->first_for_ringer || b->first_for_owner);
  // Another caller flag set is another slot; another ringer another channel.
  auto c = channels.grant(1, 2, kDoorbell, VMCI_PRIVILEGE_FLAG_RESTRICTED, &error);
  ASSERT_TRUE(c);
  EXPECT_NE(c->slot, a->slot);
  auto d = channels.grant(3, 2, kDoorbell, 0, &error);
  ASSERT_TRUE(d);
  EXPECT_NE(d->channel_id, a->channel_id);
  EXPECT_EQ(channels.channel_count(), 2u);
  EXPECT_EQ(channels.slot_count(), 4u);
}

TEST(RingChannels, ARingerHoldingAGrantGetsNoSecond) {
  RingChannels channels;
  std::string error;
  ASSERT_TRUE(channels.grant(1, 2, kDoorbell, 0, &error));
  EXPECT_FALSE(channels.grant(1, 2, kDoorbell, 0, &error));
  EXPECT_TRUE(error.empty());  // not a failure: it has one
}

TEST(RingChannels, ARevokedSlotRefusesRingsAndIsGrantedAnewWithAnotherGeneration) {
  RingChannels channels;
  std::string error;
  auto a = channels.grant(1, 2, kDoorbell, 0, &error);
  ASSERT_TRUE(a);
  proto::RingChannel* page = a->memory->channel().get();
  EXPECT_NE(proto::ring_slot(page, a->slot, a->generation), proto::SlotRing::kRefused);
  channels.revoke(kDoorbell);
  EXPECT_EQ(proto::ring_slot(page, a->slot, a->generation), proto::SlotRing::kRefused);
  EXPECT_EQ(channels.slot_count(), 0u);
  auto again = channels.grant(1, 2, kOther, 0, &error);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->slot, a->slot);  // reused...
  EXPECT_NE(again->generation, a->generation);  // ...under another generation
  EXPECT_EQ(proto::ring_slot(page, a->slot, a->generation), proto::SlotRing::kRefused);
  EXPECT_FALSE(proto::take_slot(page, a->slot, a->generation));
  EXPECT_EQ(proto::ring_slot(page, again->slot, again->generation), proto::SlotRing::kRung);
  EXPECT_TRUE(proto::take_slot(page, again->slot, again->generation));
}

// The ringer can write its page; the next generation is hostpeer's own.
TEST(RingChannels, ARingerThatRewritesAGenerationCannotChooseTheNextOne) {
  RingChannels channels;
  std::string error;
  auto a = channels.grant(1, 2, kDoorbell, 0, &error);
  ASSERT_TRUE(a);
  proto::RingChannel* page = a->memory->channel().get();
  std::atomic_ref<uint32_t>(page->slots[a->slot]).store(41u << 8);
  channels.revoke(kDoorbell);
  auto again = channels.grant(1, 2, kOther, 0, &error);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->slot, a->slot);
  EXPECT_EQ(again->generation, a->generation + 1);
}

TEST(RingChannels, APeerGoingClosesEveryChannelItIsASideOfAndRevokesThem) {
  RingChannels channels;
  std::string error;
  auto as_ringer = channels.grant(1, 2, kDoorbell, 0, &error);
  auto as_owner = channels.grant(3, 1, kOther, 0, &error);
  auto unrelated = channels.grant(3, 2, kDoorbell, 0, &error);
  ASSERT_TRUE(as_ringer && as_owner && unrelated);
  const auto closed = channels.close_all(1);
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(channels.channel_count(), 1u);
  EXPECT_EQ(proto::ring_slot(as_ringer->memory->channel().get(), as_ringer->slot,
                             as_ringer->generation),
            proto::SlotRing::kRefused);
  EXPECT_EQ(proto::ring_slot(as_owner->memory->channel().get(), as_owner->slot,
                             as_owner->generation),
            proto::SlotRing::kRefused);
  EXPECT_NE(proto::ring_slot(unrelated->memory->channel().get(), unrelated->slot,
                             unrelated->generation),
            proto::SlotRing::kRefused);
}

TEST(RingChannels, ChannelsPerOwnerAreBoundedNotThoseARingerRingsThrough) {
  RingChannels channels;
  std::string error;
  for (uint64_t ringer = 10; ringer < 10 + kMaxRingChannelsPerOwner; ++ringer) {
    ASSERT_TRUE(channels.grant(ringer, 2, kDoorbell, 0, &error)) << error;
  }
  EXPECT_FALSE(channels.grant(9, 2, kDoorbell, 0, &error));
  EXPECT_NE(error.find("the owner has 120 ring channels"), std::string::npos) << error;
  // A ringer may ring through more channels than an owner may own (a
  // device proxy ringing 200 guests).
  error.clear();
  for (uint64_t owner = 1000; owner < 1200; ++owner) {
    ASSERT_TRUE(channels.grant(3, owner, kDoorbell, 0, &error)) << error << " " << owner;
  }
}

TEST(RingChannels, TheOwnerBoundIsCountedOnEveryRefusalAndReportedOncePerEpisode) {
  RingChannels channels;
  std::string error;
  for (uint64_t ringer = 10; ringer < 10 + kMaxRingChannelsPerOwner; ++ringer) {
    ASSERT_TRUE(channels.grant(ringer, 2, kDoorbell, 0, &error)) << error;
  }
  // The 121st ringer, and then the 122nd, and the 121st again.
  bool first = false;
  EXPECT_FALSE(channels.grant(500, 2, kDoorbell, 0, &error, &first));
  EXPECT_TRUE(first);
  EXPECT_FALSE(channels.grant(501, 2, kDoorbell, 0, &error, &first));
  EXPECT_FALSE(first);
  EXPECT_FALSE(channels.grant(500, 2, kDoorbell, 0, &error, &first));
  EXPECT_FALSE(first);
  EXPECT_EQ(channels.refusals().owner_channels, 3u);
  EXPECT_EQ(channels.refusals().ringer_channels, 0u);
  EXPECT_EQ(channels.channel_count(), kMaxRingChannelsPerOwner);
  // Another owner is not bounded by this one's channels.
  EXPECT_TRUE(channels.grant(500, 3, kDoorbell, 0, &error, &first)) << error;
  // A ringer goes: its channel closes, the owner has room for one more, and
  // a later refusal is news again.
  EXPECT_EQ(channels.close_all(10).size(), 1u);
  ASSERT_TRUE(channels.grant(500, 2, kDoorbell, 0, &error)) << error;
  EXPECT_FALSE(channels.grant(501, 2, kDoorbell, 0, &error, &first));
  EXPECT_TRUE(first);
  EXPECT_EQ(channels.refusals().owner_channels, 4u);
}

TEST(RingChannels, TheRingerBoundIsCountedAndReportedOnce) {
  RingChannels channels;
  std::string error;
  for (uint64_t owner = 1000; owner < 1000 + kMaxRingChannelsPerRinger; ++owner) {
    ASSERT_TRUE(channels.grant(3, owner, kDoorbell, 0, &error)) << error;
  }
  bool first = false;
  EXPECT_FALSE(channels.grant(3, 5000, kDoorbell, 0, &error, &first));
  EXPECT_TRUE(first);
  EXPECT_NE(error.find("the ringer rings through 1024 ring channels"), std::string::npos) << error;
  EXPECT_FALSE(channels.grant(3, 5001, kDoorbell, 0, &error, &first));
  EXPECT_FALSE(first);
  EXPECT_EQ(channels.refusals().ringer_channels, 2u);
  // The ringer goes: every channel it rang through closes.
  EXPECT_EQ(channels.close_all(3).size(), kMaxRingChannelsPerRinger);
  EXPECT_EQ(channels.channel_count(), 0u);
  EXPECT_TRUE(channels.grant(3, 5000, kDoorbell, 0, &error)) << error;
}

TEST(RingChannels, NoMemoryMeansNoGrant) {
  RingChannels channels([](std::string* error) {
    *error = "no memory (injected)";
    return nullptr;
  });
  std::string error;
  EXPECT_FALSE(channels.grant(1, 2, kDoorbell, 0, &error));
  EXPECT_EQ(error, "no memory (injected)");
  EXPECT_EQ(channels.channel_count(), 0u);
  EXPECT_EQ(channels.refusals().memory, 1u);
}

}  // namespace
}  // namespace vmci::host
