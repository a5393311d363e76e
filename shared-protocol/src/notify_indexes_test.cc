#include "vmci/proto/notify_indexes.h"

#include <gtest/gtest.h>

namespace vmci::proto {
namespace {

TEST(NotifyIndexes, Item27_HandedOutInOrderAndAFreedIndexIsReusedNext) {
  NotifyIndexes indexes;
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(indexes.allocate(), i);
  indexes.release(1);
  EXPECT_EQ(indexes.allocate(), 1u);
  indexes.release(3);
  indexes.release(0);
  EXPECT_EQ(indexes.allocate(), 0u);  // the one released last
  // The drivers look for a hole only when count + 1 < max, that is when
  // there are at least two: one hole (3) below max 5 is not scanned for.
  EXPECT_EQ(indexes.allocate(), 5u);
  indexes.release(4);
  indexes.allocate();                 // 4 again (released last)
  indexes.release(2);
  indexes.release(0);
  EXPECT_EQ(indexes.allocate(), 0u);  // released last
  EXPECT_EQ(indexes.allocate(), 2u);  // two holes (2, 3): scanned from the last reserved
  EXPECT_EQ(indexes.scan_limit(), 6u);
}

TEST(NotifyIndexes, TheScanLimitFallsWhenTheTopIndexesAreFreed) {
  NotifyIndexes indexes;
  for (int i = 0; i < 6; ++i) indexes.allocate();
  indexes.release(3);
  indexes.release(4);
  EXPECT_EQ(indexes.scan_limit(), 6u);
  indexes.release(5);
  EXPECT_EQ(indexes.scan_limit(), 3u);  // 5, 4, 3 all free
  EXPECT_EQ(indexes.in_use(), 3u);
}

TEST(NotifyIndexes, Item27_Beyond4096DoorbellsIndexesAreSharedRoundRobin) {
  NotifyIndexes indexes;
  for (uint32_t i = 0; i < NotifyIndexes::kCount; ++i) ASSERT_EQ(indexes.allocate(), i);
  EXPECT_EQ(indexes.allocate(), 0u);  // (last reserved + 1) mod 4096
  EXPECT_EQ(indexes.allocate(), 1u);
  EXPECT_EQ(indexes.in_use(), NotifyIndexes::kCount + 2);
  // A shared index stays in use until all its doorbells are gone.
  indexes.release(1);
  indexes.release(1);
  indexes.release(0);
  EXPECT_EQ(indexes.allocate(), 1u);  // freed and reused first
}

TEST(NotifyIndexes, TheLastHoleOfAFullPageIsFoundNotIndex4096) {
  NotifyIndexes indexes;
  for (uint32_t i = 0; i < NotifyIndexes::kCount; ++i) indexes.allocate();
  indexes.release(100);
  indexes.release(200);
  EXPECT_EQ(indexes.allocate(), 200u);  // released last
  EXPECT_EQ(indexes.allocate(), 100u);  // the last hole, by scanning
  EXPECT_EQ(indexes.allocate(), 101u);  // now full: round-robin after 100
}

}  // namespace
}  // namespace vmci::proto
