// messages.h: request/response round trips over a byte stream, the same for
// every transport (vsock_rr_64B and its socketpair baseline, the doorbell
// figures' socketpair ping-pong). Round n's request and answer are
// different pseudo-random bytes, so a side that received an old message, a
// short one or the other direction's fails its check; both sides check
// every byte they receive.
//
// A channel is any type with
//   void write_all(const uint8_t* buf, size_t size);  // all of it, or throws
//   bool read_exactly(uint8_t* buf, size_t size);     // all of it; false if the
//                                                     // stream ended before the first
//                                                     // byte; throws otherwise
//
//   std::vector<uint8_t> buf(64);
//   for (uint64_t round = 1; ...; ++round) bench::ask(channel, buf, round);  // one side
//   bench::answer_until_end(channel, 64);                                     // the other
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

// The largest message check_message takes.
inline constexpr size_t kMaxMessage = 256;

// Writes round `round`'s request (answer false) or answer into `buf`.
inline void fill_message(uint8_t* buf, size_t size, uint64_t round, bool answer) {
  uint64_t x = round * 2 + (answer ? 1 : 0);
  for (size_t i = 0; i < size; i += sizeof x) {
    // splitmix64's step: every word differs from round to round.
    x += 0x9E37'79B9'7F4A'7C15;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58'476D'1CE4'E5B9;
    z = (z ^ (z >> 27)) * 0x94D0'49BB'1331'11EB;
    z ^= z >> 31;
    std::memcpy(buf + i, &z, std::min(sizeof z, size - i));
  }
}

// Throws std::runtime_error, naming `who`, unless `got` is that message.
inline void check_message(const uint8_t* got, size_t size, uint64_t round, bool answer,
                          const char* who) {
  uint8_t want[kMaxMessage];
  if (size > sizeof want) throw std::runtime_error("message too long to check");
  fill_message(want, size, round, answer);
  if (std::memcmp(got, want, size) != 0) {
    throw std::runtime_error(std::string(who) + ": round " + std::to_string(round) + "'s " +
                             (answer ? "answer" : "request") + " arrived wrong");
  }
}

// The asking side's round trip `round` (1, 2, ...): writes the request of
// buf.size() bytes, then reads the answer into `buf` and checks it.
template <typename Channel>
void ask(Channel& channel, std::vector<uint8_t>& buf, uint64_t round) {
  fill_message(buf.data(), buf.size(), round, false);
  channel.write_all(buf.data(), buf.size());
  if (!channel.read_exactly(buf.data(), buf.size())) {
    throw std::runtime_error("the answering side closed its end");
  }
  check_message(buf.data(), buf.size(), round, true, "asking side");
}

// The answering side: checks and answers rounds 1, 2, ... of `size` bytes
// until the stream ends.
template <typename Channel>
void answer_until_end(Channel& channel, size_t size) {
  std::vector<uint8_t> buf(size);
  for (uint64_t round = 1; channel.read_exactly(buf.data(), size); ++round) {
    check_message(buf.data(), size, round, false, "answering side");
    fill_message(buf.data(), size, round, true);
    channel.write_all(buf.data(), size);
  }
}

}  // namespace bench
