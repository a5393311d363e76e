#include "vmci/proto/log_rate_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace vmci::proto {
namespace {

// A limiter on a clock the test sets, writing its lines and summaries into
// one transcript: "w" for a line written, "s<lines>" for a summary.
struct Logged {
  explicit Logged(LogRateLimitOptions options = {})
      : limit([this](const LogSuppressed& s) { summaries.push_back(s); }, options,
              [this] { return now.load(); }) {}

  bool line(uint64_t peer = 1, uint32_t reason = 0) {
    return limit.write(peer, reason, [&] { ++written; });
  }
  uint64_t total_suppressed() const {
    uint64_t total = 0;
    for (const auto& s : summaries) total += s.lines;
    return total;
  }

  std::atomic<uint64_t> now{1000};
  std::vector<LogSuppressed> summaries;
  uint64_t written = 0;
  LogRateLimit limit;
};

TEST(LogRateLimit, AFloodOfIdenticalLinesWritesTheBurstThenOneExactSummary) {
  Logged logged;  // the defaults: 10 lines per 10 s
  for (int i = 0; i < 100000; ++i) {
    logged.line(40, 2);
    logged.now += 1000;  // 0.1 s in all, well inside the period
  }
  EXPECT_EQ(logged.written, 10u);
  EXPECT_TRUE(logged.summaries.empty());
  logged.limit.forget(40);
  ASSERT_EQ(logged.summaries.size(), 1u);
  EXPECT_LE(logged.written + logged.summaries.size(), 11u);  // at most burst + 1 lines
  const LogSuppressed& s = logged.summaries[0];
  EXPECT_EQ(s.peer, 40u);
  EXPECT_EQ(s.reason, 2u);
  EXPECT_EQ(s.lines, 99990u);
  EXPECT_EQ(s.first_ns, 1000u + 10 * 1000);  // the 11th line
  EXPECT_EQ(s.last_ns, 1000u + 99999 * 1000);
  EXPECT_EQ(s.over_ns(), 99989u * 1000);
  EXPECT_EQ(logged.limit.size(), 0u);
}

TEST(LogRateLimit, APeriodEndsForEachKeyAndItsSummaryComesBeforeItsNextLine) {
  // One key; burst 2 per 10 ns; then the peer is forgotten ("|").
  struct Case {
    const char* name;
    std::vector<uint64_t> times;
    const char* transcript;
  };
  const Case kCases[] = {
      {"within the burst", {0, 1}, "w w |"},
      {"over the burst, the summary waits", {0, 1, 2, 3}, "w w | s2"},
      {"the next period's first line", {0, 1, 2, 3, 10}, "w w s2 w |"},
      {"still the first period at 9", {0, 1, 2, 9, 10}, "w w s2 w |"},
      {"a quiet period has no summary", {0, 1, 10, 11, 12}, "w w w w | s1"},
      {"a long gap", {0, 1, 2, 25, 26, 27}, "w w s1 w w | s1"},
      {"each period counts anew", {0, 1, 2, 10, 11, 12, 13, 20}, "w w s1 w w s2 w |"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string transcript;
    std::atomic<uint64_t> now{0};
    LogRateLimit limit(
        [&](const LogSuppressed& s) { transcript += "s" + std::to_string(s.lines) + " "; },
        {2, 10, 16}, [&] { return now.load(); });
    for (uint64_t t : c.times) {
      now = t;
      limit.write(7, 1, [&] { transcript += "w "; });
    }
    transcript += "| ";
    limit.forget(7);
    if (transcript.back() == ' ') transcript.pop_back();
    EXPECT_EQ(transcript, c.transcript);
  }
}

TEST(LogRateLimit, EachPeerAndReasonHasItsOwnBound) {
  Logged logged({2, 10, 16});
  for (int i = 0; i < 5; ++i) logged.line(1, 0);
  EXPECT_TRUE(logged.line(1, 1));  // another reason of the same peer
  EXPECT_TRUE(logged.line(2, 0));  // another peer with the same reason
  EXPECT_FALSE(logged.line(1, 0));
  EXPECT_EQ(logged.written, 4u);
  EXPECT_EQ(logged.limit.size(), 3u);
}

TEST(LogRateLimit, ForgetSummarisesOnlyThatPeersKeysAndDropsThem) {
  Logged logged({1, 10, 16});
  for (uint32_t reason : {0u, 1u, 2u}) {
    for (int i = 0; i < 4; ++i) logged.line(5, reason);
  }
  logged.line(5, 3);  // written, nothing counted: no summary
  for (int i = 0; i < 3; ++i) logged.line(6, 0);
  logged.limit.forget(5);
  ASSERT_EQ(logged.summaries.size(), 3u);
  for (uint32_t reason : {0u, 1u, 2u}) {
    EXPECT_EQ(logged.summaries[reason].peer, 5u);
    EXPECT_EQ(logged.summaries[reason].reason, reason);
    EXPECT_EQ(logged.summaries[reason].lines, 3u);
  }
  EXPECT_EQ(logged.limit.size(), 1u);  // peer 6's
  logged.limit.forget(5);              // again: nothing
  EXPECT_EQ(logged.summaries.size(), 3u);
  // A forgotten key starts afresh.
  EXPECT_TRUE(logged.line(5, 0));
}

TEST(LogRateLimit, KeysBeyondTheTableShareOneBoundedEntry) {
  Logged logged({1, 10, 4});
  for (uint64_t peer = 0; peer < 4; ++peer) EXPECT_TRUE(logged.line(peer));
  EXPECT_EQ(logged.limit.size(), 4u);
  // Full, and no key's period has ended: the newcomers share one entry.
  EXPECT_TRUE(logged.line(100));
  EXPECT_FALSE(logged.line(101));
  EXPECT_FALSE(logged.line(102));
  EXPECT_EQ(logged.limit.size(), 4u);
  logged.line(0);  // counted for key 0
  // The periods end: the next newcomer sweeps the table (key 0's count is
  // written) and is tracked; the shared entry's summary comes with its own
  // next line.
  logged.now += 10;
  EXPECT_TRUE(logged.line(103));
  ASSERT_EQ(logged.summaries.size(), 1u);
  EXPECT_EQ(logged.summaries[0].peer, 0u);
  EXPECT_EQ(logged.summaries[0].lines, 1u);
  EXPECT_EQ(logged.limit.size(), 1u);
  for (uint64_t peer = 200; peer < 203; ++peer) EXPECT_TRUE(logged.line(peer));
  EXPECT_EQ(logged.limit.size(), 4u);
  EXPECT_TRUE(logged.line(300));  // left out again: the shared entry's new period
  ASSERT_EQ(logged.summaries.size(), 2u);
  EXPECT_EQ(logged.summaries[1].peer, LogRateLimit::kAnyPeer);
  EXPECT_EQ(logged.summaries[1].reason, LogRateLimit::kAnyReason);
  EXPECT_EQ(logged.summaries[1].lines, 2u);
}

TEST(LogRateLimit, TheTableIsSweptAtMostOncePerPeriod) {
  Logged logged({1, 10, 2});
  logged.line(0);
  logged.now += 5;
  logged.line(1);
  logged.line(2);   // full: swept, nothing ended; left out
  logged.now += 5;  // key 0's period ended, but the next sweep is not due
  logged.line(3);
  EXPECT_EQ(logged.limit.size(), 2u);
  logged.now += 5;
  EXPECT_TRUE(logged.line(4));  // swept: keys 0 and 1 go
  EXPECT_EQ(logged.limit.size(), 1u);
}

TEST(LogRateLimit, ConcurrentWritersAreCountedExactly) {
  Logged logged({10, 1'000'000'000'000, 16});
  std::atomic<uint64_t> written{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) logged.limit.write(9, 0, [&] { ++written; });
    });
  }
  for (auto& thread : threads) thread.join();
  logged.limit.forget(9);
  EXPECT_EQ(written.load(), 10u);
  EXPECT_EQ(logged.total_suppressed(), 80000u - 10);
}

TEST(LogRateLimit, CallbacksMayUseTheLimiter) {
  std::atomic<uint64_t> now{0};
  std::vector<std::string> lines;
  LogRateLimit* self = nullptr;
  LogRateLimit limit(
      [&](const LogSuppressed& s) {
        lines.push_back("summary " + std::to_string(s.lines) + " of " +
                        std::to_string(self->size()));
      },
      {1, 10, 16}, [&] { return now.load(); });
  self = &limit;
  for (int i = 0; i < 3; ++i) {
    limit.write(1, 0, [&] { lines.push_back("line " + std::to_string(limit.size())); });
  }
  now = 10;
  limit.write(1, 0, [&] { lines.push_back("line " + std::to_string(limit.size())); });
  EXPECT_EQ(lines, (std::vector<std::string>{"line 1", "summary 2 of 1", "line 1"}));
}

}  // namespace
}  // namespace vmci::proto
