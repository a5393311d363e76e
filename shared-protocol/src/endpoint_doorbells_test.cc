#include "vmci/proto/endpoint_doorbells.h"

#include <gtest/gtest.h>

#include <atomic>

#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

class EndpointDoorbellsTest : public ::testing::Test {
 protected:
  EndpointDoorbellsTest() {
    std::string error;
    notify_keep = SharedMemory::anonymous(kNotifyMemorySize, &error);
    notify = reinterpret_cast<NotifyMemory*>(notify_keep->data());
    auto page = SharedMemory::anonymous(kRingChannelFileSize, &error);
    auto* raw = reinterpret_cast<RingChannel*>(page->data());
    channel = std::shared_ptr<RingChannel>(std::move(page), raw);
  }
  // Makes an active doorbell; returns its index.
  uint64_t make(vmci_handle handle) {
    const uint64_t index = doorbells.reserve_index();
    EXPECT_EQ(doorbells.insert(handle, index, [] {}), VMCI_SUCCESS);
    doorbells.activate(handle);
    return index;
  }
  std::vector<uint32_t> rung_resources() {
    std::vector<uint32_t> out;
    for (const auto& r : doorbells.take_rung(notify)) out.push_back(r.handle.resource);
    return out;
  }

  std::shared_ptr<SharedMemory> notify_keep;
  NotifyMemory* notify;
  std::shared_ptr<RingChannel> channel;
  EndpointDoorbells doorbells;
};

const vmci_handle kA{16, 1}, kB{16, 2};

TEST_F(EndpointDoorbellsTest, OnlyGrantedSlotsRingADoorbell) {
  make(kA);
  const uint32_t generation = grant_slot(channel.get(), 4, 0);
  ASSERT_TRUE(doorbells.add_grant(kA, 9, channel, 4, generation));
  ring_slot(channel.get(), 4, generation);
  EXPECT_EQ(rung_resources(), std::vector<uint32_t>{1});
  // A slot the owner was never told of rings nothing, whatever is in it.
  std::atomic_ref<uint32_t>(channel->slots[5]).store((generation << 8) | kSlotRung);
  EXPECT_TRUE(rung_resources().empty());
}

TEST_F(EndpointDoorbellsTest, ABitmapRingAndASlotRingBeforeOneScanAreOneCallback) {
  const uint64_t index = make(kA);
  const uint32_t generation = grant_slot(channel.get(), 0, 0);
  doorbells.add_grant(kA, 9, channel, 0, generation);
  ring(notify, index);
  ring_slot(channel.get(), 0, generation);
  EXPECT_EQ(rung_resources(), std::vector<uint32_t>{1});
  EXPECT_TRUE(rung_resources().empty());  // both were taken
}

TEST_F(EndpointDoorbellsTest, AnInactiveDoorbellsRingsWaitUntilItIsActive) {
  const uint64_t index = doorbells.reserve_index();
  ASSERT_EQ(doorbells.insert(kA, index, [] {}), VMCI_SUCCESS);
  const uint32_t generation = grant_slot(channel.get(), 0, 0);
  ASSERT_TRUE(doorbells.add_grant(kA, 9, channel, 0, generation));  // may come before activation
  ring_slot(channel.get(), 0, generation);
  EXPECT_TRUE(rung_resources().empty());
  doorbells.activate(kA);
  EXPECT_EQ(rung_resources(), std::vector<uint32_t>{1});
}

TEST_F(EndpointDoorbellsTest, GrantsGoWithTheirDoorbellOrChannel) {
  EXPECT_FALSE(doorbells.add_grant(kA, 9, channel, 0, 1));  // no such doorbell
  make(kA);
  make(kB);
  const uint32_t ga = grant_slot(channel.get(), 0, 0), gb = grant_slot(channel.get(), 1, 0);
  doorbells.add_grant(kA, 9, channel, 0, ga);
  doorbells.add_grant(kB, 9, channel, 1, gb);
  ASSERT_EQ(doorbells.remove(kA, false), VMCI_SUCCESS);
  ring_slot(channel.get(), 0, ga);
  EXPECT_TRUE(rung_resources().empty());
  doorbells.drop_channel(9);
  ring_slot(channel.get(), 1, gb);
  EXPECT_TRUE(rung_resources().empty());
}

TEST_F(EndpointDoorbellsTest, Item27_EveryDoorbellOnARungSharedIndexIsRung) {
  const uint64_t index = make(kA);
  const uint64_t index_b = doorbells.reserve_index();
  doorbells.release_index(index_b);
  ASSERT_EQ(doorbells.insert(kB, index, [] {}), VMCI_SUCCESS);  // the same index
  doorbells.activate(kB);
  ring(notify, index);
  EXPECT_EQ(rung_resources(), (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace vmci::proto
