#include "vmci/proto/datagram_lane.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "test_support/anonymous_ring_channel.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

DatagramLaneControl* control_of(RingChannel* channel) {
  return reinterpret_cast<DatagramLaneControl*>(reinterpret_cast<uint8_t*>(channel) +
                                                kRingChannelSize);
}

vmci_datagram header_for(uint64_t payload) {
  vmci_datagram h{};
  h.dst = VMCI_MAKE_HANDLE(2, 7);
  h.src = VMCI_MAKE_HANDLE(40, 1);
  h.payload_size = payload;
  return h;
}

std::vector<uint8_t> payload_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
  return p;
}

TEST(DatagramLane, DatagramsArriveWholeAndInOrderAcrossTheWrap) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 5, 0);
  LaneWriter writer(channel.get());
  LaneReader reader(channel.get());
  // Odd sizes, far more than the data holds, so records wrap many times.
  for (int i = 0; i < 3000; ++i) {
    const size_t n = 1 + (i * 977) % 3000;
    const auto payload = payload_of(n, static_cast<uint8_t>(i));
    ASSERT_NE(writer.send(5, gen, header_for(n), payload, kMaxLaneCap), LaneSend::kFull) << i;
    LaneRecord r;
    uint64_t barrier = 0;
    std::string why;
    ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kRecord) << why;
    EXPECT_EQ(r.slot, 5u);
    EXPECT_EQ(r.generation, gen);
    ASSERT_EQ(r.size, sizeof(vmci_datagram) + n);
    std::vector<uint8_t> dg;
    ASSERT_TRUE(reader.take(r, &dg));
    ASSERT_EQ(0, std::memcmp(dg.data() + sizeof(vmci_datagram), payload.data(), n)) << i;
    std::string none;
    EXPECT_EQ(reader.peek(&r, &barrier, &none), LanePeek::kEmpty);
  }
}

TEST(DatagramLane, ASendIsRefusedAtTheCapAsSpecSection35CountsIt) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 0, 0);
  LaneWriter writer(channel.get());
  const auto payload = payload_of(76, 1);  // DG_SIZE 100
  // queued + 100 >= 1000 is refused: 9 fit (900 + 100 = 1000 is refused).
  int sent = 0;
  while (writer.send(0, gen, header_for(76), payload, 1000) != LaneSend::kFull) ++sent;
  EXPECT_EQ(sent, 9);
  LaneReader reader(channel.get());
  LaneRecord r;
  uint64_t barrier = 0;
  std::string why;
  ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kRecord);
  reader.take(r, nullptr);  // room for one more
  EXPECT_NE(writer.send(0, gen, header_for(76), payload, 1000), LaneSend::kFull);
  EXPECT_EQ(writer.send(0, gen, header_for(76), payload, 1000), LaneSend::kFull);
}

TEST(DatagramLane, ARevokedOrRegrantedSlotRefusesTheSend) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 2, 0);
  LaneWriter writer(channel.get());
  revoke_slot(channel.get(), 2);
  EXPECT_EQ(writer.send(2, gen, header_for(0), {}, kMaxLaneCap), LaneSend::kRefused);
  const uint32_t again = grant_slot(channel.get(), 2, gen);
  EXPECT_EQ(writer.send(2, gen, header_for(0), {}, kMaxLaneCap), LaneSend::kRefused);
  EXPECT_NE(writer.send(2, again, header_for(0), {}, kMaxLaneCap), LaneSend::kRefused);
}

TEST(DatagramLane, IndexesOrRecordsARingerForgedAreCorruptNeverReadPast) {
  auto channel = test_support::anonymous_ring_channel();
  LaneReader reader(channel.get());
  LaneRecord r;
  uint64_t barrier = 0;
  std::string why;
  control_of(channel.get())->head = kDatagramLaneDataSize + 8;  // more than the data holds
  EXPECT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kCorrupt);
  EXPECT_NE(why.find("head"), std::string::npos) << why;

  auto other = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(other.get(), 0, 0);
  LaneWriter writer(other.get());
  ASSERT_NE(writer.send(0, gen, header_for(8), payload_of(8, 0), kMaxLaneCap), LaneSend::kFull);
  // The record now claims a payload larger than anything written.
  auto* header = reinterpret_cast<vmci_datagram*>(reinterpret_cast<uint8_t*>(other.get()) +
                                                  kRingChannelSize + kDatagramLaneControlSize + 8);
  header->payload_size = 4000;
  LaneReader other_reader(other.get());
  EXPECT_EQ(other_reader.peek(&r, &barrier, &why), LanePeek::kCorrupt);
  header->payload_size = VMCI_MAX_DG_SIZE;  // larger than any datagram
  EXPECT_EQ(other_reader.peek(&r, &barrier, &why), LanePeek::kCorrupt);
  // So large that 24 + it wraps around to 8 bytes (found by the fuzzer).
  header->payload_size = ~uint64_t{0} - 15;
  EXPECT_EQ(other_reader.peek(&r, &barrier, &why), LanePeek::kCorrupt);
  EXPECT_NE(why.find("claims a payload"), std::string::npos) << why;
}

// hostpeer's count of its deliveries to the owner moved since the ringer's
// last record: a barrier record with the new count goes first, once.
TEST(DatagramLane, ABarrierRecordGoesBeforeTheFirstDatagramAfterTheOwnersDeliveriesMoved) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 3, 0);
  LaneWriter writer(channel.get());
  LaneReader reader(channel.get());
  LaneRecord r;
  uint64_t barrier = 0;
  std::string why;
  std::vector<uint8_t> dg;
  ASSERT_NE(writer.send(3, gen, header_for(8), payload_of(8, 1), kMaxLaneCap), LaneSend::kFull);
  ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kRecord) << why;  // count still 0
  ASSERT_TRUE(reader.take(r, &dg));

  channel->owner_deliveries = 7;
  for (int i = 0; i < 2; ++i) {
    ASSERT_NE(writer.send(3, gen, header_for(8), payload_of(8, 2), kMaxLaneCap), LaneSend::kFull);
  }
  ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kBarrier) << why;
  EXPECT_EQ(barrier, 7u);
  EXPECT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kBarrier);  // until taken
  reader.take_barrier();
  for (int i = 0; i < 2; ++i) {  // the count did not move again: no second barrier
    ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kRecord) << i << why;
    ASSERT_TRUE(reader.take(r, &dg));
  }
  EXPECT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kEmpty);
  EXPECT_EQ(control_of(channel.get())->taken_bytes, 3 * (sizeof(vmci_datagram) + 8))
      << "a barrier counts no datagram bytes against the cap";
}

TEST(DatagramLane, ABarrierRecordCutShortIsCorrupt) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t tag[2] = {kLaneBarrierSlot, 0};
  std::memcpy(reinterpret_cast<uint8_t*>(channel.get()) + kRingChannelSize +
                  kDatagramLaneControlSize,
              tag, sizeof tag);
  control_of(channel.get())->head = sizeof tag;  // the tag, without its count
  LaneReader reader(channel.get());
  LaneRecord r;
  uint64_t barrier = 0;
  std::string why;
  EXPECT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kCorrupt);
  EXPECT_NE(why.find("barrier"), std::string::npos) << why;
}

TEST(DatagramLane, ARecordRewrittenBetweenPeekAndTakeIsDroppedNotHandedOver) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 0, 0);
  LaneWriter writer(channel.get());
  ASSERT_NE(writer.send(0, gen, header_for(64), payload_of(64, 0), kMaxLaneCap), LaneSend::kFull);
  LaneReader reader(channel.get());
  LaneRecord r;
  uint64_t barrier = 0;
  std::string why;
  ASSERT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kRecord);
  auto* header = reinterpret_cast<vmci_datagram*>(reinterpret_cast<uint8_t*>(channel.get()) +
                                                  kRingChannelSize + kDatagramLaneControlSize + 8);
  header->payload_size = 8;  // after the peek: the copy must not be trusted
  std::vector<uint8_t> dg;
  EXPECT_FALSE(reader.take(r, &dg));
  EXPECT_TRUE(dg.empty());
  EXPECT_EQ(reader.peek(&r, &barrier, &why), LanePeek::kEmpty);  // taken all the same
}

TEST(DatagramLane, AnOwnerThatForgesItsIndexesOnlyMakesTheLaneLookFull) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 0, 0);
  LaneWriter writer(channel.get());
  control_of(channel.get())->tail = 1u << 30;  // beyond anything written
  EXPECT_EQ(writer.send(0, gen, header_for(8), payload_of(8, 0), kMaxLaneCap), LaneSend::kFull);
}

TEST(DatagramLane, TwoThreadsStreamEveryDatagramIntact) {
  auto channel = test_support::anonymous_ring_channel();
  const uint32_t gen = grant_slot(channel.get(), 1, 0);
  constexpr int kCount = 100000;
  std::thread producer([&] {
    LaneWriter writer(channel.get());
    for (int i = 0; i < kCount;) {
      uint8_t payload[40];
      std::memset(payload, i & 0xff, sizeof payload);
      std::memcpy(payload, &i, sizeof i);
      if (writer.send(1, gen, header_for(sizeof payload), payload, 4096) == LaneSend::kFull) {
        std::this_thread::yield();
        continue;
      }
      ++i;
    }
  });
  LaneReader reader(channel.get());
  std::vector<uint8_t> dg;
  for (int i = 0; i < kCount;) {
    LaneRecord r;
    uint64_t barrier = 0;
    std::string why;
    const LanePeek p = reader.peek(&r, &barrier, &why);
    ASSERT_NE(p, LanePeek::kCorrupt) << why;
    if (p == LanePeek::kEmpty) {
      std::this_thread::yield();
      continue;
    }
    ASSERT_TRUE(reader.take(r, &dg));
    int seq;
    std::memcpy(&seq, dg.data() + sizeof(vmci_datagram), sizeof seq);
    ASSERT_EQ(seq, i);
    ASSERT_EQ(dg.back(), static_cast<uint8_t>(i & 0xff));
    ++i;
  }
  producer.join();
}

}  // namespace
}  // namespace vmci::proto
