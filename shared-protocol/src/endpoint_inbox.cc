#include "vmci/proto/endpoint_inbox.h"

#include <algorithm>
#include <array>
#include <chrono>

namespace vmci::proto {

void EndpointInbox::poke() { signal_and_wake(&own_); }

void EndpointInbox::push(Delivery delivery) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back(Queued{std::move(delivery), {}});
  }
  poke();
}

void EndpointInbox::push_action(std::function<void()> action) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back(Queued{{}, std::move(action)});
  }
  poke();
}

void EndpointInbox::hold() {
  std::lock_guard lock(mutex_);
  held_ = true;
}

void EndpointInbox::release() {
  {
    std::lock_guard lock(mutex_);
    held_ = false;
  }
  poke();
}

void EndpointInbox::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  poke();
}

bool EndpointInbox::watch(uint64_t key, std::shared_ptr<NotifyWakeWord> word) {
  {
    std::lock_guard lock(mutex_);
    if (!watched_.count(key) && watched_.size() >= kMaxWatched) return false;
    watched_[key] = std::move(word);
    auto words = std::make_shared<Words>();
    for (const auto& [k, w] : watched_) words->push_back(w);
    words_ = std::move(words);
    ++words_version_;
  }
  poke();
  return true;
}

void EndpointInbox::unwatch(uint64_t key) {
  {
    std::lock_guard lock(mutex_);
    if (!watched_.erase(key)) return;
    auto words = std::make_shared<Words>();
    for (const auto& [k, w] : watched_) words->push_back(w);
    words_ = std::move(words);
    ++words_version_;
  }
  poke();
}

void EndpointInbox::rescan() {
  {
    std::lock_guard lock(mutex_);
    ++words_version_;
  }
  poke();
}

EndpointInbox::Next EndpointInbox::next() {
  std::array<NotifyWakeWord*, kMaxWaitWords> words{};
  std::array<uint32_t, kMaxWaitWords> seen{};
  for (;;) {
    // Own sequence first: whatever changes after it (a push, a new word)
    // pokes, and the wait below returns at once.
    words[0] = &own_;
    seen[0] = sequence(&own_);
    std::shared_ptr<const Words> watched;
    uint64_t version;
    bool held;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return Next{Kind::kStopped, {}, {}};
      if (!held_ && !queue_.empty()) {
        Queued& front = queue_.front();
        const Kind kind = front.action ? Kind::kAction : Kind::kDelivery;
        Next next{kind, std::move(front.delivery), std::move(front.action)};
        queue_.pop_front();
        return next;
      }
      watched = words_;
      version = words_version_;
      held = held_;
    }
    const size_t n = watched->size() + 1;
    for (size_t i = 1; i < n; ++i) {
      words[i] = (*watched)[i - 1].get();
      seen[i] = sequence(words[i]);
    }
    // A ring signals after it set its byte or slot: a scan that starts
    // after these reads finds it, and a later one moves a sequence again.
    if (!held && (version != scanned_version_ ||
                  !std::equal(seen.begin() + 1, seen.begin() + n, scanned_.begin(), scanned_.end()))) {
      scanned_version_ = version;
      scanned_.assign(seen.begin() + 1, seen.begin() + n);
      return Next{Kind::kScan, {}, {}};
    }
    wait_for_any(std::span(words.data(), n), std::span(seen.data(), n), std::chrono::hours(24));
  }
}

}  // namespace vmci::proto
