// log_rate_limit.h: a bound on the log lines a peer can cause. A hostile
// guest can repeat whatever makes hostpeer or an endpoint log a line (a
// forged record in a datagram lane, a datagram with a forged source, a
// malformed hypercall) as fast as memory goes. With a LogRateLimit in
// front of the log, each key (a peer and a reason) writes at most `burst`
// lines per `period`; the lines beyond are counted, not written, and one
// summary line says how many there were and over what time: before the
// key's next line that is written once its period has ended, or when the
// peer is forgotten (its connection or lane closed).
//
// No I/O and no threads: the caller writes each line (a callback per line)
// and each summary (the callback given at construction). Thread-safe; the
// callbacks are called with no lock held, so they may log and may call
// this limiter again.
//
//   LogRateLimit limit([&](const LogSuppressed& s) {
//     log->warn("context {}: {} more like it not logged (in {} ns)", s.peer, s.lines, s.over_ns());
//   });
//   limit.write(cid, kForgedSource, [&] { log->warn("context {}: forged source {}", cid, src); });
//   limit.forget(cid);  // its connection closed: what was counted is written now
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "vmci/proto/monotonic_clock.h"

namespace vmci::proto {

struct LogRateLimitOptions {
  uint32_t burst = 10;                  // lines written per key and period
  uint64_t period_ns = 10'000'000'000;  // 10 s
  size_t max_keys = 4096;               // keys tracked at once (see LogRateLimit)
};

// What a summary line reports: lines of one key counted and not written.
struct LogSuppressed {
  uint64_t peer;
  uint32_t reason;
  uint64_t lines;     // how many were not written
  uint64_t first_ns;  // when the first of them came (the limiter's clock)
  uint64_t last_ns;   // when the last of them came
  uint64_t over_ns() const { return last_ns - first_ns; }
};

class LogRateLimit {
 public:
  // A summary of lines from keys beyond `max_keys` (see write()).
  static constexpr uint64_t kAnyPeer = UINT64_MAX;
  static constexpr uint32_t kAnyReason = UINT32_MAX;

  using Summary = std::function<void(const LogSuppressed&)>;
  using Clock = std::function<uint64_t()>;  // nanoseconds, never going back

  // `summary` writes a summary line; `clock` is monotonic_ns unless a test
  // gives its own.
  explicit LogRateLimit(Summary summary, LogRateLimitOptions options = {},
                        Clock clock = monotonic_ns);
  LogRateLimit(const LogRateLimit&) = delete;
  LogRateLimit& operator=(const LogRateLimit&) = delete;

  // One line for (peer, reason): `write_line()` writes it, unless the key
  // has written `burst` lines in its period; then the line is counted. A
  // key's period starts with its first line, and a new one with its first
  // line after the period ended; the summary of what the ended period
  // counted is written before that line. Returns whether the line was
  // written.
  //
  // Bounded memory: at most `max_keys` keys are tracked. When a new key
  // finds the table full, keys whose period ended are dropped (writing
  // their summaries), at most once a period; if it is still full, the new
  // key's lines share one entry (kAnyPeer, kAnyReason) with every other
  // key left out, under the same bound.
  template <typename WriteLine>
  bool write(uint64_t peer, uint32_t reason, WriteLine&& write_line) {
    Decision decision = decide(peer, reason);
    for (const LogSuppressed& s : decision.summaries) summary_(s);
    if (decision.write) write_line();
    return decision.write;
  }

  // The peer is gone: writes a summary for each of its keys that counted
  // lines, then drops its keys.
  void forget(uint64_t peer);

  // Keys tracked (not counting the shared entry for keys left out).
  size_t size() const;

 private:
  struct Entry {
    uint64_t period_start = 0;
    uint32_t written = 0;
    uint64_t suppressed = 0;
    uint64_t first_suppressed = 0, last_suppressed = 0;
  };
  struct Decision {
    bool write = false;
    std::vector<LogSuppressed> summaries;  // to write first
  };

  Decision decide(uint64_t peer, uint32_t reason);
  // Drops the keys whose period ended by `now`, adding the summaries of
  // those that counted lines (mutex_ held).
  void drop_ended(uint64_t now, std::vector<LogSuppressed>* summaries);
  // The summary of what `entry` counted, if anything.
  static void summarise(uint64_t peer, uint32_t reason, const Entry& entry,
                        std::vector<LogSuppressed>* summaries);

  const Summary summary_;
  const LogRateLimitOptions options_;
  const Clock clock_;

  mutable std::mutex mutex_;  // guards everything below

  std::map<std::pair<uint64_t, uint32_t>, Entry> entries_;  // by (peer, reason)
  // The keys that found the table full share this entry.
  Entry left_out_;
  bool left_out_started_ = false;
  // The table is swept for keys whose period ended no earlier than this.
  uint64_t next_drop_ns_ = 0;
};

}  // namespace vmci::proto
