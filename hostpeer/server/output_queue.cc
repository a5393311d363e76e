#include "server/output_queue.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>

namespace vmci::host {

OutputQueue::~OutputQueue() { clear(); }

void OutputQueue::close_fds(Chunk& chunk) {
  for (int fd : chunk.fds) ::close(fd);
  descriptors_ -= chunk.fds.size();
  chunk.fds.clear();
}

void OutputQueue::push(std::vector<uint8_t> frame, std::vector<int> fds) {
  if (frame.empty() && fds.empty()) return;
  if (fds.empty() && !chunks_.empty()) {
    Chunk& back = chunks_.back();
    const bool in_flight = front_in_flight_ && chunks_.size() == 1;
    if (!in_flight && back.bytes.size() + frame.size() <= kChunkBytes) {
      const size_t before = back.bytes.capacity();
      back.bytes.insert(back.bytes.end(), frame.begin(), frame.end());
      memory_ += back.bytes.capacity() - before;
      return;
    }
  }
  descriptors_ += fds.size();
  frame.shrink_to_fit();
  memory_ += frame.capacity();
  chunks_.push_back(Chunk{std::move(frame), 0, std::move(fds)});
}

std::span<const uint8_t> OutputQueue::next() {
  assert(!chunks_.empty());
  front_in_flight_ = true;
  const Chunk& front = chunks_.front();
  return std::span<const uint8_t>(front.bytes).subspan(front.written);
}

const std::vector<int>& OutputQueue::next_fds() const {
  assert(!chunks_.empty());
  return chunks_.front().fds;
}

void OutputQueue::consumed(size_t n) {
  assert(!chunks_.empty());
  Chunk& front = chunks_.front();
  if (n > 0) close_fds(front);  // the peer has its own copies now
  front.written += std::min(n, front.bytes.size() - front.written);
  if (front.written < front.bytes.size()) return;
  front_in_flight_ = false;
  memory_ -= front.bytes.capacity();
  chunks_.pop_front();
}

void OutputQueue::clear() {
  for (Chunk& chunk : chunks_) close_fds(chunk);
  if (front_in_flight_ && !chunks_.empty()) retired_ = std::move(chunks_.front().bytes);
  chunks_.clear();
  front_in_flight_ = false;
  memory_ = 0;
}

}  // namespace vmci::host
