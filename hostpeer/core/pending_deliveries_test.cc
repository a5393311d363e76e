#include "core/pending_deliveries.h"

#include <gtest/gtest.h>

namespace vmci::host {
namespace {

TEST(PendingDeliveries, APeerThatAcknowledgesByIdRetiresExactlyThatId) {
  PendingDeliveries pending(false);
  pending.add(1, 100);
  pending.add(2, 50);
  EXPECT_TRUE(pending.take(2));
  EXPECT_EQ(pending.count(), 1u);
  EXPECT_EQ(pending.bytes(), 100u);
  EXPECT_FALSE(pending.take(2));   // not pending any more
  EXPECT_FALSE(pending.take(7));   // never given
  EXPECT_TRUE(pending.settle(5));  // counts mean nothing from this peer
  EXPECT_EQ(pending.count(), 1u);
}

TEST(PendingDeliveries, ACountRetiresTheOldestDeliveriesFirst) {
  PendingDeliveries pending(true);
  pending.add(1, 10);
  pending.add(2, 20);
  pending.add(3, 30);
  EXPECT_TRUE(pending.settle(2));
  EXPECT_EQ(pending.count(), 1u);
  EXPECT_EQ(pending.bytes(), 30u);
  EXPECT_TRUE(pending.settle(2));  // nothing new
  EXPECT_EQ(pending.count(), 1u);
  EXPECT_TRUE(pending.settle(3));
  EXPECT_EQ(pending.count(), 0u);
  EXPECT_EQ(pending.bytes(), 0u);
}

TEST(PendingDeliveries, ACountGoesOnAcrossItsWrapAround) {
  PendingDeliveries pending(true);
  // A claim puts the settled count near the top of its range.
  EXPECT_FALSE(pending.settle(0xffff'fffeu));
  for (uint32_t id = 1; id <= 3; ++id) pending.add(id, 8);
  EXPECT_TRUE(pending.settle(0xffff'ffffu));
  EXPECT_EQ(pending.count(), 2u);
  EXPECT_TRUE(pending.settle(1));  // two more, across 2^32
  EXPECT_EQ(pending.count(), 0u);
}

TEST(PendingDeliveries, ACountBeyondWhatWasGivenRetiresAllAndIsReported) {
  PendingDeliveries pending(true);
  pending.add(1, 10);
  pending.add(2, 10);
  EXPECT_FALSE(pending.settle(5));
  EXPECT_EQ(pending.count(), 0u);
  EXPECT_EQ(pending.bytes(), 0u);
  // Later counts go on from the claimed one.
  pending.add(3, 10);
  EXPECT_TRUE(pending.settle(6));
  EXPECT_EQ(pending.count(), 0u);
}

TEST(PendingDeliveries, ACountGoingBackwardsIsAClaimOfEverything) {
  PendingDeliveries pending(true);
  pending.add(1, 10);
  pending.add(2, 10);
  ASSERT_TRUE(pending.settle(1));
  EXPECT_FALSE(pending.settle(0));  // 2^32 - 1 more: more than were given
  EXPECT_EQ(pending.count(), 0u);
}

TEST(PendingDeliveries, ADeliveryTakenByIdStillCountsOnce) {
  PendingDeliveries pending(true);
  pending.add(1, 10);
  pending.add(2, 20);
  EXPECT_TRUE(pending.take(1));    // a frame from a peer that also counts
  EXPECT_TRUE(pending.settle(1));  // the count's first is id 1: nothing more retires
  EXPECT_EQ(pending.count(), 1u);
  EXPECT_EQ(pending.bytes(), 20u);
}

}  // namespace
}  // namespace vmci::host
