#include "vmci/proto/notify_memory.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "vmci/proto/shared_memory.h"

namespace vmci::proto {
namespace {

NotifyMemory* notify_memory(std::shared_ptr<SharedMemory>& keep) {
  std::string error;
  keep = SharedMemory::anonymous(kNotifyMemorySize, &error);
  return reinterpret_cast<NotifyMemory*>(keep->data());
}

TEST(NotifyMemory, Item26_SeveralRingsBeforeTheTakeAreOneNotification) {
  std::shared_ptr<SharedMemory> keep;
  NotifyMemory* m = notify_memory(keep);
  EXPECT_FALSE(take(m, 7));
  EXPECT_FALSE(ring(m, 7));  // nobody sleeps: no wake-up call needed
  ring(m, 7);
  ring(m, 7);
  EXPECT_TRUE(take(m, 7));
  EXPECT_FALSE(take(m, 7));
  EXPECT_EQ(sequence(&m->wake), 3u);
}

TEST(NotifyMemory, AWaitEndsOnARingOrATimeout) {
  std::shared_ptr<SharedMemory> keep;
  NotifyMemory* m = notify_memory(keep);
  NotifyWakeWord* word = &m->wake;
  const uint32_t seen = sequence(word);
  wait_for_any({&word, 1}, {&seen, 1}, std::chrono::milliseconds(20));
  EXPECT_EQ(sequence(word), seen);
  std::thread ringer([&] {
    // Rings once the waiter is asleep, so the wake-up call is needed.
    while (std::atomic_ref<uint32_t>(m->wake.sleepers).load() == 0) std::this_thread::yield();
    if (ring(m, 1)) wake(&m->wake);
  });
  wait_for_any({&word, 1}, {&seen, 1}, std::chrono::seconds(10));
  EXPECT_NE(sequence(word), seen);
  ringer.join();
  EXPECT_TRUE(take(m, 1));
}

// Every ring is seen: after the last ring of an index, the waiter takes it.
TEST(NotifyMemory, NoRingIsLostBetweenThreads) {
  std::shared_ptr<SharedMemory> keep;
  NotifyMemory* m = notify_memory(keep);
  constexpr int kRings = 20000;
  std::atomic<int> rung_last{-1};
  std::thread ringer([&] {
    for (int i = 0; i < kRings; ++i) {
      if (ring(m, static_cast<uint64_t>(i % 64))) wake(&m->wake);
    }
    rung_last = kRings - 1;
  });
  std::vector<int> taken(64, 0);
  NotifyWakeWord* word = &m->wake;
  for (;;) {
    const uint32_t seen = sequence(word);
    const bool done = rung_last.load() >= 0;
    for (uint64_t i = 0; i < 64; ++i) taken[i] += take(m, i);
    if (done) break;
    wait_for_any({&word, 1}, {&seen, 1}, std::chrono::milliseconds(100));
  }
  ringer.join();
  for (uint64_t i = 0; i < 64; ++i) {
    EXPECT_GT(taken[i], 0) << i;
    EXPECT_FALSE(take(m, i)) << i;  // nothing left behind
  }
}

}  // namespace
}  // namespace vmci::proto
