#include "vmci/proto/log_rate_limit.h"

namespace vmci::proto {

LogRateLimit::LogRateLimit(Summary summary, LogRateLimitOptions options, Clock clock)
    : summary_(std::move(summary)), options_(options), clock_(std::move(clock)) {}

void LogRateLimit::summarise(uint64_t peer, uint32_t reason, const Entry& entry,
                             std::vector<LogSuppressed>* summaries) {
  if (entry.suppressed == 0) return;
  summaries->push_back(
      {peer, reason, entry.suppressed, entry.first_suppressed, entry.last_suppressed});
}

LogRateLimit::Decision LogRateLimit::decide(uint64_t peer, uint32_t reason) {
  Decision decision;
  std::lock_guard lock(mutex_);
  const uint64_t now = clock_();
  const auto key = std::make_pair(peer, reason);
  Entry* entry = nullptr;
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    entry = &it->second;
  } else {
    if (entries_.size() >= options_.max_keys && now >= next_drop_ns_) {
      drop_ended(now, &decision.summaries);
      next_drop_ns_ = now + options_.period_ns;
    }
    if (entries_.size() < options_.max_keys) {
      entry = &entries_.emplace(key, Entry{now, 0, 0, 0, 0}).first->second;
    } else {
      if (!left_out_started_) left_out_ = Entry{now, 0, 0, 0, 0};
      left_out_started_ = true;
      entry = &left_out_;
      peer = kAnyPeer;
      reason = kAnyReason;
    }
  }
  if (now - entry->period_start >= options_.period_ns) {
    summarise(peer, reason, *entry, &decision.summaries);
    *entry = Entry{now, 0, 0, 0, 0};
  }
  if (entry->written < options_.burst) {
    ++entry->written;
    decision.write = true;
  } else {
    if (entry->suppressed == 0) entry->first_suppressed = now;
    ++entry->suppressed;
    entry->last_suppressed = now;
  }
  return decision;
}

void LogRateLimit::drop_ended(uint64_t now, std::vector<LogSuppressed>* summaries) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.period_start >= options_.period_ns) {
      summarise(it->first.first, it->first.second, it->second, summaries);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

void LogRateLimit::forget(uint64_t peer) {
  std::vector<LogSuppressed> summaries;
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.lower_bound({peer, 0});
    while (it != entries_.end() && it->first.first == peer) {
      summarise(peer, it->first.second, it->second, &summaries);
      it = entries_.erase(it);
    }
  }
  for (const LogSuppressed& s : summaries) summary_(s);
}

size_t LogRateLimit::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace vmci::proto
