#include "vmci/proto/ring_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "test_support/anonymous_ring_channel.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

TEST(RingChannel, AGrantedSlotRingsAndIsTakenOnceHoweverManyRings) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t generation = grant_slot(channel.get(), 3, 0);
  EXPECT_NE(generation, 0u);
  EXPECT_FALSE(take_slot(channel.get(), 3, generation));
  EXPECT_EQ(ring_slot(channel.get(), 3, generation), SlotRing::kRung);  // nobody sleeps
  EXPECT_EQ(ring_slot(channel.get(), 3, generation), SlotRing::kRung);
  EXPECT_TRUE(take_slot(channel.get(), 3, generation));
  EXPECT_FALSE(take_slot(channel.get(), 3, generation));
  EXPECT_EQ(sequence(&channel->wake), 2u);
}

TEST(RingChannel, ASlotNeverGrantedOrOutOfRangeRefuses) {
  auto channel = test_support::anonymous_ring_channel();
  EXPECT_EQ(ring_slot(channel.get(), 0, 0), SlotRing::kRefused);  // generation 0 is never granted
  EXPECT_EQ(ring_slot(channel.get(), kRingChannelSlots, 1), SlotRing::kRefused);
  EXPECT_FALSE(take_slot(channel.get(), kRingChannelSlots, 1));
}

TEST(RingChannel, ARevokedSlotRefusesAndItsPendingRingIsNotTaken) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t generation = grant_slot(channel.get(), 0, 0);
  EXPECT_EQ(ring_slot(channel.get(), 0, generation), SlotRing::kRung);
  revoke_slot(channel.get(), 0);
  EXPECT_EQ(ring_slot(channel.get(), 0, generation), SlotRing::kRefused);
  // The owner still takes a ring from before the revocation (the doorbell
  // was alive then); it is gone from the owner's table anyway.
  EXPECT_TRUE(take_slot(channel.get(), 0, generation));
  const uint32_t again = grant_slot(channel.get(), 0, generation);
  EXPECT_NE(again, generation);
  EXPECT_EQ(ring_slot(channel.get(), 0, generation), SlotRing::kRefused);
  EXPECT_FALSE(take_slot(channel.get(), 0, generation));
}

// The ringer can write anything into the page; the owner takes only the
// slots and generations hostpeer told it of.
TEST(RingChannel, AForgedGenerationIsNotTakenByTheOwner) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t granted = grant_slot(channel.get(), 5, 0);
  std::atomic_ref<uint32_t>(channel->slots[5]).store(((granted + 7) << 8) | kSlotRung);
  EXPECT_FALSE(take_slot(channel.get(), 5, granted));
  // (A slot never granted is never taken: the owner scans only its grants,
  // EndpointDoorbells.OnlyGrantedSlotsRingADoorbell.)
}

TEST(RingChannel, ARingWakesASleepingOwner) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t generation = grant_slot(channel.get(), 1, 0);
  NotifyWakeWord* word = &channel->wake;
  const uint32_t seen = sequence(word);
  std::atomic<SlotRing> result{SlotRing::kRefused};
  std::thread ringer([&] {
    while (std::atomic_ref<uint32_t>(word->sleepers).load() == 0) std::this_thread::yield();
    result = ring_slot(channel.get(), 1, generation);
    if (result == SlotRing::kRungWakeNeeded) wake(&channel->wake);
  });
  wait_for_any({&word, 1}, {&seen, 1}, std::chrono::seconds(10));
  ringer.join();
  EXPECT_EQ(result.load(), SlotRing::kRungWakeNeeded);
  EXPECT_TRUE(take_slot(channel.get(), 1, generation));
}

TEST(RingChannel, MapsOnlyASealedPageOfTheRightSize) {
  std::string error;
  EXPECT_FALSE(map_ring_channel(-1, &error));
  EXPECT_FALSE(error.empty());
  // Not sealed: whoever holds it could shrink it under the mapping.
  const int unsealed = ::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(unsealed, 0);
  ASSERT_EQ(::ftruncate(unsealed, kRingChannelFileSize), 0);
  error.clear();
  EXPECT_FALSE(map_ring_channel(unsealed, &error));
  EXPECT_FALSE(error.empty());
  // Sealed, but shorter than a channel with its lane.
  const int short_one = ::memfd_create("short", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(short_one, 0);
  ASSERT_EQ(::ftruncate(short_one, kRingChannelSize), 0);
  ASSERT_EQ(::fcntl(short_one, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  error.clear();
  EXPECT_FALSE(map_ring_channel(short_one, &error));
  EXPECT_FALSE(error.empty());
  // Sealed and whole: mapped.
  ASSERT_EQ(::ftruncate(unsealed, kRingChannelFileSize), 0);
  ASSERT_EQ(::fcntl(unsealed, F_ADD_SEALS, F_SEAL_SHRINK), 0);
  EXPECT_TRUE(map_ring_channel(unsealed, &error)) << error;
  ::close(unsealed);
  ::close(short_one);
}

}  // namespace
}  // namespace vmci::proto
