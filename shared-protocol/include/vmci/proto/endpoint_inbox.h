// endpoint_inbox.h: everything an endpoint's delivery thread waits for, in
// one place: deliveries its own threads queue (datagrams, events), and
// doorbell rings, which arrive as signals on wake words in shared memory
// (the connection's notify memory, rung by hostpeer; ring channels, rung by
// peers directly: vmci/proto/ring_channel.h). The thread sleeps in one
// futex_waitv over all of them, so a ring wakes the thread that runs the
// callback, with no thread in between, and nothing polls.
//
// Thread-safe; next() is for one thread (the delivery thread).
//
//   EndpointInbox inbox;
//   inbox.watch(0, notify_wake_word);
//   for (;;) {
//     auto next = inbox.next();
//     if (next.kind == EndpointInbox::Kind::kStopped) break;
//     if (next.kind == EndpointInbox::Kind::kScan) run(doorbells.take_rung(notify));
//     else handle(next.delivery);
//   }
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "vmci/proto/wake_word.h"

namespace vmci::proto {

class EndpointInbox {
 public:
  struct Delivery {
    uint32_t id = 0;
    std::vector<uint8_t> datagram;
  };
  enum class Kind {
    kDelivery,  // the next queued delivery
    kAction,    // the next queued action: run next.action
    kScan,      // a watched word was signalled since the last kScan: look for rings
    kStopped,
  };
  struct Next {
    Kind kind;
    Delivery delivery;
    std::function<void()> action;
  };
  // Watched words at most (one futex_waitv takes them and the inbox's own).
  static constexpr size_t kMaxWatched = kMaxWaitWords - 1;

  EndpointInbox() = default;
  EndpointInbox(const EndpointInbox&) = delete;
  EndpointInbox& operator=(const EndpointInbox&) = delete;

  // Queued for next(); dropped once stopped.
  void push(Delivery delivery);
  // Queued with the deliveries, so it runs after those pushed before it
  // (a datagram-lane grant: vmci/proto/endpoint_datagram_lanes.h).
  void push_action(std::function<void()> action);
  // While held, next() hands out nothing (rings wait where they are).
  void hold();
  void release();
  // next() returns kStopped from now on.
  void stop();

  // Watches a ring word under `key` (replacing one with that key); the
  // pointer keeps its memory mapped while watched. False if kMaxWatched
  // are watched already.
  bool watch(uint64_t key, std::shared_ptr<NotifyWakeWord> word);
  void unwatch(uint64_t key);
  // The next next() scans even if no word moved (a grant came for a slot
  // that may have been rung before it).
  void rescan();

  // Blocks until there is something to do: a delivery (in order), a scan,
  // or the stop.
  Next next();

 private:
  using Words = std::vector<std::shared_ptr<NotifyWakeWord>>;
  // Wakes next() to look again.
  void poke();

  std::mutex mutex_;  // guards the fields below, not own_
  struct Queued {
    Delivery delivery;
    std::function<void()> action;  // set: an action, not a delivery
  };
  std::deque<Queued> queue_;
  bool held_ = false;
  bool stopping_ = false;
  std::map<uint64_t, std::shared_ptr<NotifyWakeWord>> watched_;
  std::shared_ptr<const Words> words_ = std::make_shared<Words>();  // watched_'s values
  uint64_t words_version_ = 0;
  NotifyWakeWord own_{};  // poked by this process's threads

  // The delivery thread's: the sequences the last kScan was for.
  uint64_t scanned_version_ = ~uint64_t{0};
  std::vector<uint32_t> scanned_;
};

}  // namespace vmci::proto
