#include "vmci/proto/endpoint_inbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace vmci::proto {
namespace {

using Kind = EndpointInbox::Kind;

std::shared_ptr<NotifyWakeWord> new_word() { return std::make_shared<NotifyWakeWord>(); }

// The first next() scans (nothing was scanned yet); then it waits.
void drain_first_scan(EndpointInbox& inbox) { ASSERT_EQ(inbox.next().kind, Kind::kScan); }

TEST(EndpointInbox, DeliveriesComeInOrderAndNothingAfterTheStop) {
  EndpointInbox inbox;
  inbox.push({1, {}});
  inbox.push({2, {}});
  EXPECT_EQ(inbox.next().delivery.id, 1u);
  EXPECT_EQ(inbox.next().delivery.id, 2u);
  inbox.stop();
  inbox.push({3, {}});
  EXPECT_EQ(inbox.next().kind, Kind::kStopped);
}

TEST(EndpointInbox, ASignalledWordMeansOneScanAndAQuietOneNone) {
  EndpointInbox inbox;
  auto word = new_word();
  ASSERT_TRUE(inbox.watch(0, word));
  drain_first_scan(inbox);
  signal(word.get());
  signal(word.get());
  EXPECT_EQ(inbox.next().kind, Kind::kScan);  // one scan for both
  inbox.push({7, {}});
  EXPECT_EQ(inbox.next().delivery.id, 7u);  // no scan: the word did not move
}

TEST(EndpointInbox, HeldMeansNothingUntilRelease) {
  EndpointInbox inbox;
  auto word = new_word();
  inbox.watch(0, word);
  drain_first_scan(inbox);
  inbox.hold();
  inbox.push({1, {}});
  signal_and_wake(word.get());
  std::atomic<bool> released{false};
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    released = true;
    inbox.release();
  });
  const auto first = inbox.next();
  EXPECT_TRUE(released.load());
  EXPECT_EQ(first.kind, Kind::kDelivery);
  EXPECT_EQ(inbox.next().kind, Kind::kScan);
  releaser.join();
}

TEST(EndpointInbox, ASleeperWakesForARingOnAnyWatchedWord) {
  EndpointInbox inbox;
  auto own = new_word(), channel = new_word();
  inbox.watch(0, own);
  inbox.watch(5, channel);
  drain_first_scan(inbox);
  std::thread ringer([&] {
    while (std::atomic_ref<uint32_t>(channel->sleepers).load() == 0) std::this_thread::yield();
    signal_and_wake(channel.get());
  });
  EXPECT_EQ(inbox.next().kind, Kind::kScan);
  ringer.join();
}

TEST(EndpointInbox, WatchingAndRescanningEachGiveAScan) {
  EndpointInbox inbox;
  drain_first_scan(inbox);
  inbox.watch(1, new_word());
  EXPECT_EQ(inbox.next().kind, Kind::kScan);
  inbox.rescan();
  EXPECT_EQ(inbox.next().kind, Kind::kScan);
  inbox.unwatch(1);
  EXPECT_EQ(inbox.next().kind, Kind::kScan);
}

TEST(EndpointInbox, WatchedWordsAreBounded) {
  EndpointInbox inbox;
  for (uint64_t key = 0; key < EndpointInbox::kMaxWatched; ++key) {
    ASSERT_TRUE(inbox.watch(key, new_word()));
  }
  EXPECT_FALSE(inbox.watch(EndpointInbox::kMaxWatched, new_word()));
  EXPECT_TRUE(inbox.watch(0, new_word()));  // replacing one is fine
}

// Every ring on every word is seen by a scan that starts after it.
TEST(EndpointInbox, NoRingIsLostAcrossManyWords) {
  EndpointInbox inbox;
  constexpr int kWords = 40, kRings = 20000;
  std::vector<std::shared_ptr<NotifyWakeWord>> words;
  std::vector<std::atomic<uint32_t>> flags(kWords);
  for (int i = 0; i < kWords; ++i) {
    words.push_back(new_word());
    inbox.watch(static_cast<uint64_t>(i), words.back());
  }
  std::thread ringer([&] {
    for (int n = 0; n < kRings; ++n) {
      flags[n % kWords].store(1);
      signal_and_wake(words[n % kWords].get());
    }
    inbox.push({1, {}});  // the end
  });
  std::vector<int> seen(kWords, 0);
  for (bool done = false; !done;) {
    auto next = inbox.next();
    if (next.kind == Kind::kDelivery) done = true;
    for (int i = 0; i < kWords; ++i) seen[i] += flags[i].exchange(0);
  }
  ringer.join();
  for (int i = 0; i < kWords; ++i) {
    EXPECT_GT(seen[i], 0) << i;
    EXPECT_EQ(flags[i].load(), 0u) << i;
  }
}

}  // namespace
}  // namespace vmci::proto
