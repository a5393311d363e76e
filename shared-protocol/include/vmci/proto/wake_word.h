// wake_word.h: a wake-up word in shared memory, an eventcount: whoever has
// news for an endpoint publishes it (a byte, a slot), then signal()s the
// word, and makes the futex call (wake()) only if signal() says someone
// sleeps on it. The endpoint reads the sequences, looks for news, and sleeps
// in wait_for_any() only if no word moved since it read them, so nothing is
// lost and nothing polls. No locks: both words are atomics, and a process
// that dies mid-call leaves nothing held.
//
//   // ringer                          // endpoint (one thread)
//   publish_news();                    const uint32_t seen = sequence(word);
//   if (signal(word)) wake(word);      if (!look_for_news()) wait_for_any({&word, 1}, {&seen, 1}, t);
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vmci::proto {

struct NotifyWakeWord {
  uint32_t sequence;  // bumped after every piece of news
  uint32_t sleepers;  // threads inside wait_for_any on this word
};

// The most words one wait_for_any takes (the kernel's FUTEX_WAITV_MAX).
inline constexpr size_t kMaxWaitWords = 128;

// Bumps the sequence (after the caller published its news); true if a
// thread may sleep on the word: then call wake().
bool signal(NotifyWakeWord* word);
// Wakes every thread sleeping on the word (one FUTEX_WAKE).
void wake(NotifyWakeWord* word);
// signal(), then wake() if needed; true if it made the system call.
bool signal_and_wake(NotifyWakeWord* word);
// The current sequence (an acquire load: news published before it is seen).
uint32_t sequence(const NotifyWakeWord* word);
// Sleeps until some words[i]'s sequence differs from seen[i], or `timeout`
// passes, or a spurious wake-up. Returns at once if one differs already.
// At most kMaxWaitWords words; the words may live in different mappings
// (one futex_waitv, shared futexes; on a kernel without futex_waitv, before
// Linux 5.16, it sleeps on the first word and looks at the others every
// millisecond).
void wait_for_any(std::span<NotifyWakeWord* const> words, std::span<const uint32_t> seen,
                  std::chrono::milliseconds timeout);

}  // namespace vmci::proto
