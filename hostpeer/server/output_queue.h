// output_queue.h: what a session has yet to write to its peer, stored so
// that its cost is its size. Frames are appended to chunks of up to
// kChunkBytes, so ten thousand small frames are a few chunks, not ten
// thousand allocations; memory() is what the chunks have allocated, which
// is what the session's cap on queued bytes counts. Descriptors to pass go
// with the first byte of their frame, which then starts a chunk of its own.
//
// Not thread-safe: the session's I/O thread owns it.
//
//   OutputQueue out;
//   out.push(frame, {});
//   while (!out.empty()) {
//     const auto bytes = out.next();   // with out.next_fds() on its first byte
//     out.consumed(write(bytes));      // the chunk is not appended to meanwhile
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace vmci::host {

class OutputQueue {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;

  OutputQueue() = default;
  ~OutputQueue();  // closes the descriptors not passed yet
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;

  // Queues a frame; the queue owns `fds` from now on.
  void push(std::vector<uint8_t> frame, std::vector<int> fds);
  bool empty() const { return chunks_.empty(); }

  // The bytes to write next. They stay where they are, and nothing is
  // appended to them, until consumed() says they are all written.
  std::span<const uint8_t> next();
  // The descriptors to pass with the first byte of next(), if any.
  const std::vector<int>& next_fds() const;
  // `n` bytes of next() were written (the descriptors, if any, passed with
  // the first): closes the queue's copies of those descriptors.
  void consumed(size_t n);

  // Bytes the queue has allocated, and descriptors it holds.
  size_t memory() const { return memory_; }
  size_t descriptors() const { return descriptors_; }

  // Drops every frame and closes every descriptor. The bytes of a next()
  // not yet consumed stay readable (an asynchronous write may still be
  // handed them) until the queue is destroyed.
  void clear();

 private:
  struct Chunk {
    std::vector<uint8_t> bytes;
    size_t written = 0;
    std::vector<int> fds;  // go with bytes[0]
  };
  void close_fds(Chunk& chunk);

  std::deque<Chunk> chunks_;
  bool front_in_flight_ = false;  // next() was handed out and not consumed
  std::vector<uint8_t> retired_;  // a cleared in-flight chunk's bytes
  size_t memory_ = 0;
  size_t descriptors_ = 0;
};

}  // namespace vmci::host
