// stream.h: the producer and consumer loops every transport runs, so that
// the transports differ only in how they move bytes.
//
// The producer sends fixed-size chunks, each stamped with its sequence
// number in its first 8 bytes and the complement in its last 8, until the
// consumer says stop; then it publishes how many it sent. The consumer
// receives into a chunk buffer, checks every chunk's stamps (so a broken
// path cannot look fast), warms up, measures bytes and chunks over a fixed
// window, then says stop and drains. With StreamParams::every_byte (the
// vSockets figure and its baseline) the chunks' bodies vary too and the
// consumer compares every byte (ChunkPattern). Both busy-poll: nothing sleeps; a
// call that found the queue empty (full) is followed by one PAUSE, as in
// any spin loop, so a poller does not steal the line its peer is writing
// on every few cycles.
//
// A channel is any type with
//   int64_t send(const void* buf, size_t n);  // bytes taken (> 0), 0 when full, < 0 error
//   int64_t recv(void* buf, size_t n);        // bytes given (> 0), 0 when empty, < 0 error
// (or throwing std::runtime_error, with a better message than a number).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.h"

namespace bench {

struct StreamParams {
  size_t chunk = 0;        // bytes per chunk, >= 16
  double warmup_s = 0.05;  // streamed before the window opens
  double window_s = 0.25;  // the measured window
  double stall_s = 10;     // no progress for this long: the trial failed
  bool every_byte = false;  // ChunkPattern: compare every byte, not only the stamps
};

struct Measurement {
  uint64_t bytes = 0;   // received within the window
  uint64_t chunks = 0;  // completed within the window
  double seconds = 0;   // the window's exact length
  double bytes_per_s() const { return static_cast<double>(bytes) / seconds; }
  double chunks_per_s() const { return static_cast<double>(chunks) / seconds; }
};

namespace detail {

inline void stamp(uint8_t* chunk, size_t size, uint64_t seq) {
  const uint64_t inverse = ~seq;
  std::memcpy(chunk, &seq, sizeof seq);
  std::memcpy(chunk + size - sizeof inverse, &inverse, sizeof inverse);
}

inline void check_stamp(const uint8_t* chunk, size_t size, uint64_t seq) {
  uint64_t first, last;
  std::memcpy(&first, chunk, sizeof first);
  std::memcpy(&last, chunk + size - sizeof last, sizeof last);
  if (first != seq || last != ~seq) {
    throw std::runtime_error("data mismatch in chunk " + std::to_string(seq) + " (got " +
                             std::to_string(first) + ", ~" + std::to_string(~last) + ")");
  }
}

// One spin-wait hint.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

using Clock = std::chrono::steady_clock;

inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace detail

// What the chunks of a stream hold. Chunk `seq` is body seq % bodies with
// its stamps. Stamps only (every_byte false): one body, a fixed filler, and
// check() reads the stamps. Every byte: three bodies of pseudo-random bytes
// (three: no divisor of a power-of-two ring's chunk count, so what a ring
// held a lap earlier is not the chunk expected now), and check() compares
// every byte. The producer's cost is the same either way (it stamps a
// ready body); the consumer's grows by a memcmp of the chunk.
class ChunkPattern {
 public:
  ChunkPattern(size_t chunk, bool every_byte) : chunk_(chunk), every_byte_(every_byte) {
    if (!every_byte) {
      bodies_.emplace_back(chunk);
      for (size_t i = 0; i < chunk; ++i) bodies_[0][i] = static_cast<uint8_t>(i * 131 + 7);
      return;
    }
    uint64_t x = 0x9E37'79B9'7F4A'7C15;  // a linear congruential generator's state
    for (int b = 0; b < 3; ++b) {
      bodies_.emplace_back(chunk);
      for (uint8_t& byte : bodies_.back()) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        byte = static_cast<uint8_t>(x >> 56);
      }
    }
  }
  // Chunk `seq`, stamped; valid until the next call.
  const uint8_t* stamped(uint64_t seq) {
    std::vector<uint8_t>& body = bodies_[seq % bodies_.size()];
    detail::stamp(body.data(), chunk_, seq);
    return body.data();
  }
  // Throws std::runtime_error unless `got` (chunk bytes) is chunk `seq`.
  void check(const uint8_t* got, uint64_t seq) const {
    detail::check_stamp(got, chunk_, seq);
    if (!every_byte_) return;
    const uint8_t* want = bodies_[seq % bodies_.size()].data();
    const size_t stamp = sizeof(uint64_t);
    if (std::memcmp(got + stamp, want + stamp, chunk_ - 2 * stamp) == 0) return;
    size_t at = stamp;
    while (got[at] == want[at]) ++at;
    throw std::runtime_error("data mismatch in chunk " + std::to_string(seq) + " at byte " +
                             std::to_string(at));
  }

 private:
  size_t chunk_;
  bool every_byte_;
  std::vector<std::vector<uint8_t>> bodies_;
};

// Streams chunks into `ch` until `control.stop`; throws if `ch` fails.
// `every_byte`: the consumer's StreamParams::every_byte.
template <typename Channel>
void produce(Channel& ch, Control& control, size_t chunk, bool every_byte = false) {
  ChunkPattern pattern(chunk, every_byte);
  uint64_t seq = 0;
  while (control.stop.load(std::memory_order_relaxed) == 0) {
    const uint8_t* data = pattern.stamped(seq);
    for (size_t off = 0; off < chunk;) {
      const int64_t n = ch.send(data + off, chunk - off);
      if (n < 0) throw std::runtime_error("send failed: " + std::to_string(n));
      if (n == 0) detail::cpu_relax();
      off += static_cast<size_t>(n);
    }
    ++seq;
  }
  control.final_chunks = seq;
  control.done.store(1, std::memory_order_release);
}

// After produce(): waits (sleeping: nothing is measured now) until the
// consumer has everything, so the transport can be torn down.
inline void wait_for_consumer(Control& control, double timeout_s = 30) {
  const auto deadline = detail::Clock::now() + std::chrono::duration<double>(timeout_s);
  while (control.consumer_done.load(std::memory_order_acquire) == 0) {
    if (detail::Clock::now() > deadline) throw std::runtime_error("consumer never finished");
    ::usleep(200);
  }
}

// Receives from `ch`, checking every chunk, and measures the window. Calls
// child.check_running() when nothing has arrived for a while. Throws on a
// mismatch, a stall or a dead child.
template <typename Channel>
Measurement consume(Channel& ch, Control& control, Child& child, const StreamParams& p) {
  using detail::Clock;
  const size_t chunk = p.chunk;
  const ChunkPattern pattern(chunk, p.every_byte);
  std::vector<uint8_t> buf(chunk);
  size_t off = 0;
  uint64_t seq = 0;       // chunks checked
  uint64_t received = 0;  // bytes

  enum Phase { kFirstByte, kWarmup, kWindow, kDrain } phase = kFirstByte;
  Measurement m;
  uint64_t window_bytes0 = 0, window_chunks0 = 0;
  Clock::time_point phase_end{}, window_start{};
  auto last_progress = Clock::now();
  uint64_t progress_mark = 0;
  // The clock is read every `every` loop turns: often enough to time the
  // window to within microseconds, rarely enough to cost nothing.
  const unsigned every = static_cast<unsigned>(std::clamp<size_t>(262144 / chunk, 1, 1024));
  unsigned turns = 0;

  for (;;) {
    const int64_t n = ch.recv(buf.data() + off, chunk - off);
    if (n < 0) throw std::runtime_error("recv failed: " + std::to_string(n));
    if (n > 0) {
      off += static_cast<size_t>(n);
      received += static_cast<uint64_t>(n);
      if (off == chunk) {
        pattern.check(buf.data(), seq);
        ++seq;
        off = 0;
      }
    } else if (phase != kDrain) {
      detail::cpu_relax();
    } else if (off == 0 && control.done.load(std::memory_order_acquire) != 0) {
      if (seq == control.final_chunks) break;
      if (seq > control.final_chunks) throw std::runtime_error("more chunks than were sent");
    }
    if (++turns < every && phase != kFirstByte) continue;
    turns = 0;

    const auto now = Clock::now();
    if (received != progress_mark) {
      progress_mark = received;
      last_progress = now;
    } else if (detail::seconds_between(last_progress, now) > 0.05) {
      child.check_running();
      if (detail::seconds_between(last_progress, now) > p.stall_s) {
        throw std::runtime_error("no data for " + std::to_string(p.stall_s) + " s");
      }
    }
    switch (phase) {
      case kFirstByte:
        if (received > 0) {
          phase = kWarmup;
          phase_end = now + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(p.warmup_s));
        }
        break;
      case kWarmup:
        if (now >= phase_end) {
          phase = kWindow;
          window_start = now;
          window_bytes0 = received;
          window_chunks0 = seq;
          phase_end = now + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(p.window_s));
        }
        break;
      case kWindow:
        if (now >= phase_end) {
          m.seconds = detail::seconds_between(window_start, now);
          m.bytes = received - window_bytes0;
          m.chunks = seq - window_chunks0;
          phase = kDrain;
          control.stop.store(1, std::memory_order_release);
        }
        break;
      case kDrain:
        break;
    }
  }
  control.consumer_done.store(1, std::memory_order_release);
  return m;
}

}  // namespace bench
