#include "server/output_queue.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <numeric>

namespace vmci::host {
namespace {

std::vector<uint8_t> frame_of(size_t size, uint8_t first) {
  std::vector<uint8_t> f(size);
  std::iota(f.begin(), f.end(), first);
  return f;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Drains the queue as a writer that takes at most `step` bytes a time.
std::vector<uint8_t> drain(OutputQueue& out, size_t step) {
  std::vector<uint8_t> written;
  while (!out.empty()) {
    const auto bytes = out.next();
    const size_t n = std::min(step, bytes.size());
    written.insert(written.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    out.consumed(n);
  }
  return written;
}

TEST(OutputQueue, SmallFramesShareChunksAndCostAboutTheirSize) {
  OutputQueue out;
  constexpr size_t kFrames = 100000, kFrameSize = 32;
  for (size_t i = 0; i < kFrames; ++i) out.push(frame_of(kFrameSize, static_cast<uint8_t>(i)), {});
  const size_t bytes = kFrames * kFrameSize;
  EXPECT_GE(out.memory(), bytes);
  EXPECT_LE(out.memory(), bytes + OutputQueue::kChunkBytes);
  std::vector<uint8_t> expected;
  for (size_t i = 0; i < kFrames; ++i) {
    const auto f = frame_of(kFrameSize, static_cast<uint8_t>(i));
    expected.insert(expected.end(), f.begin(), f.end());
  }
  EXPECT_EQ(drain(out, 7000), expected);
  EXPECT_EQ(out.memory(), 0u);
}

TEST(OutputQueue, BytesHandedOutAreNotAppendedToUntilConsumed) {
  OutputQueue out;
  out.push(frame_of(10, 0), {});
  const auto first = out.next();
  const uint8_t* where = first.data();
  for (int i = 0; i < 100; ++i) out.push(frame_of(1000, 1), {});  // would grow the first chunk
  EXPECT_EQ(out.next().data(), where);
  EXPECT_EQ(out.next().size(), 10u);
  out.consumed(4);
  EXPECT_EQ(out.next().data(), where + 4);
  out.consumed(6);
  EXPECT_EQ(drain(out, 1 << 20).size(), 100000u);
}

TEST(OutputQueue, DescriptorsGoWithTheFirstByteOfTheirFrameAndAreClosedOnceWritten) {
  OutputQueue out;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  out.push(frame_of(5, 0), {});
  out.push(frame_of(6, 10), {pipe_fds[0], pipe_fds[1]});
  out.push(frame_of(7, 20), {});  // after a frame with descriptors: the same chunk
  EXPECT_EQ(out.descriptors(), 2u);
  EXPECT_TRUE(out.next_fds().empty());
  EXPECT_EQ(out.next().size(), 5u);
  out.consumed(5);
  EXPECT_EQ(out.next_fds(), (std::vector<int>{pipe_fds[0], pipe_fds[1]}));
  EXPECT_EQ(out.next().size(), 13u);
  EXPECT_EQ(out.next()[0], 10);
  out.consumed(2);  // the descriptors went with the first byte
  EXPECT_EQ(out.descriptors(), 0u);
  EXPECT_TRUE(out.next_fds().empty());
  EXPECT_FALSE(is_open(pipe_fds[0]));
  EXPECT_FALSE(is_open(pipe_fds[1]));
  EXPECT_EQ(out.next().size(), 11u);
}

TEST(OutputQueue, ClearClosesEveryDescriptorAndKeepsBytesInFlightReadable) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  OutputQueue out;
  out.push(frame_of(3000, 0), {});
  out.push(frame_of(8, 0), {pipe_fds[0]});
  out.push(frame_of(8, 0), {pipe_fds[1]});
  const auto in_flight = out.next();
  out.clear();
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(out.memory(), 0u);
  EXPECT_EQ(out.descriptors(), 0u);
  EXPECT_FALSE(is_open(pipe_fds[0]));
  EXPECT_FALSE(is_open(pipe_fds[1]));
  EXPECT_EQ(in_flight[2999], static_cast<uint8_t>(2999));  // ASan checks the read
}

TEST(OutputQueue, DestroyingTheQueueClosesWhatWasNotPassed) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  {
    OutputQueue out;
    out.push(frame_of(8, 0), {pipe_fds[0], pipe_fds[1]});
  }
  EXPECT_FALSE(is_open(pipe_fds[0]));
  EXPECT_FALSE(is_open(pipe_fds[1]));
}

}  // namespace
}  // namespace vmci::host
