#include "vmci/proto/queue.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

namespace vmci::proto {
namespace {

// The memory of one pair, and the views of its two endpoints: the creator's
// produce queue is the attacher's consume queue.
class PairMemory {
 public:
  PairMemory(uint64_t creator_produce, uint64_t creator_consume)
      : p_(creator_produce), c_(creator_consume) {
    init_queue_header(&ph_, VMCI_MAKE_HANDLE(16, 1024));
    init_queue_header(&ch_, VMCI_MAKE_HANDLE(16, 1024));
  }
  QueuePairView creator() { return {&ph_, p_.data(), p_.size(), &ch_, c_.data(), c_.size()}; }
  QueuePairView attacher() { return {&ch_, c_.data(), c_.size(), &ph_, p_.data(), p_.size()}; }
  vmci_queue_header& creator_header() { return ph_; }
  vmci_queue_header& attacher_header() { return ch_; }

 private:
  std::vector<uint8_t> p_, c_;
  vmci_queue_header ph_{}, ch_{};
};

std::vector<uint8_t> bytes(size_t n, uint8_t first = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(first + i);
  return v;
}

TEST(Queue, Item3_AFreshQueueHoldsSizeMinusOne) {
  PairMemory m(4096, 1024);
  EXPECT_EQ(produce_free_space(m.creator()), 4095);
  EXPECT_EQ(consume_free_space(m.creator()), 1023);
  EXPECT_EQ(produce_buf_ready(m.creator()), 0);
  EXPECT_EQ(consume_buf_ready(m.creator()), 0);
  const auto data = bytes(5000);
  EXPECT_EQ(enqueue(m.creator(), data.data(), data.size()), 4095);
}

TEST(Queue, Item1_FullQueueIsNoSpaceEvenForZeroBytes) {
  PairMemory m(16, 16);
  const auto data = bytes(15);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 0), 0) << "0 bytes with space: 0";
  ASSERT_EQ(enqueue(m.creator(), data.data(), 15), 15);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 0), VMCI_ERROR_QUEUEPAIR_NOSPACE);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 1), VMCI_ERROR_QUEUEPAIR_NOSPACE);
}

TEST(Queue, Item2_EmptyQueueIsNoDataEvenForZeroBytes) {
  PairMemory m(16, 16);
  uint8_t buf[16];
  EXPECT_EQ(dequeue(m.attacher(), buf, 0), VMCI_ERROR_QUEUEPAIR_NODATA);
  EXPECT_EQ(dequeue(m.attacher(), buf, 4), VMCI_ERROR_QUEUEPAIR_NODATA);
  EXPECT_EQ(peek(m.attacher(), buf, 4), VMCI_ERROR_QUEUEPAIR_NODATA);
  const auto data = bytes(3);
  enqueue(m.creator(), data.data(), 3);
  EXPECT_EQ(dequeue(m.attacher(), buf, 0), 0) << "0 bytes with data: 0";
}

TEST(Queue, Item4_EnqueueIsAPartialWrite) {
  PairMemory m(8, 8);
  const auto data = bytes(20);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 5), 5);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 20), 2) << "exactly the free space";
}

TEST(Queue, Item5_ASizeZeroDirectionIsInvalidSize) {
  PairMemory m(0, 4096);
  const auto data = bytes(1);
  EXPECT_EQ(enqueue(m.creator(), data.data(), 1), VMCI_ERROR_INVALID_SIZE);
  EXPECT_EQ(produce_free_space(m.creator()), VMCI_ERROR_INVALID_SIZE);
  EXPECT_EQ(enqueue(m.attacher(), data.data(), 1), 1) << "the other direction works";
}

TEST(Queue, Item14_TheAttachersProduceQueueIsTheCreatorsConsumeQueue) {
  PairMemory m(64, 32);
  const auto a = bytes(10, 1), b = bytes(7, 100);
  ASSERT_EQ(enqueue(m.creator(), a.data(), a.size()), 10);
  ASSERT_EQ(enqueue(m.attacher(), b.data(), b.size()), 7);
  EXPECT_EQ(consume_buf_ready(m.attacher()), 10);
  EXPECT_EQ(consume_buf_ready(m.creator()), 7);
  std::vector<uint8_t> got(64);
  ASSERT_EQ(dequeue(m.attacher(), got.data(), got.size()), 10);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  // My read position in my consume queue lives in my produce queue's header.
  EXPECT_EQ(m.attacher_header().consumer_head, 10u);
  EXPECT_EQ(m.creator_header().producer_tail, 10u);
  ASSERT_EQ(dequeue(m.creator(), got.data(), got.size()), 7);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), got.begin()));
  EXPECT_EQ(m.creator_header().consumer_head, 7u);
}

TEST(Queue, PeekDoesNotConsume) {
  PairMemory m(16, 16);
  const auto data = bytes(5, 40);
  enqueue(m.creator(), data.data(), 5);
  uint8_t buf[8];
  EXPECT_EQ(peek(m.attacher(), buf, 8), 5);
  EXPECT_EQ(peek(m.attacher(), buf, 3), 3);
  EXPECT_EQ(consume_buf_ready(m.attacher()), 5);
  EXPECT_EQ(dequeue(m.attacher(), buf, 8), 5);
  EXPECT_EQ(buf[4], 44);
}

TEST(Queue, IndexesFollowTheSpecsPairing) {
  PairMemory m(100, 100);
  const auto data = bytes(30);
  enqueue(m.creator(), data.data(), 30);
  uint8_t buf[10];
  dequeue(m.attacher(), buf, 10);
  EXPECT_EQ(produce_indexes(m.creator()).tail, 30u);
  EXPECT_EQ(produce_indexes(m.creator()).head, 10u);
  EXPECT_EQ(consume_indexes(m.attacher()).tail, 30u);
  EXPECT_EQ(consume_indexes(m.attacher()).head, 10u);
  EXPECT_EQ(produce_buf_ready(m.creator()), 20);
}

TEST(Queue, RandomChunksWrapManyTimesByteForByte) {
  std::mt19937 rng(4);
  for (uint64_t size : {1ull, 2ull, 3ull, 17ull, 4096ull, 4097ull}) {
    SCOPED_TRACE(size);
    PairMemory m(size, size);
    const auto stream = bytes(200000, 3);
    size_t sent = 0, received = 0;
    std::vector<uint8_t> out(stream.size());
    std::uniform_int_distribution<size_t> chunk(0, 2 * size + 1);
    while (received < stream.size()) {
      const size_t n = std::min(chunk(rng), stream.size() - sent);
      const int64_t put = enqueue(m.creator(), stream.data() + sent, n);
      if (put > 0) sent += static_cast<size_t>(put);
      const int64_t got = dequeue(m.attacher(), out.data() + received, chunk(rng));
      if (got > 0) received += static_cast<size_t>(got);
      ASSERT_TRUE(put >= 0 || put == VMCI_ERROR_QUEUEPAIR_NOSPACE) << put;
      ASSERT_TRUE(got >= 0 || got == VMCI_ERROR_QUEUEPAIR_NODATA) << got;
      if (size == 1) break;  // a 1-byte queue is always full
    }
    if (size > 1) {
      EXPECT_EQ(out, stream);
    }
  }
}

TEST(QueueLayout, PagesAsVmciLaysThemOut) {
  struct Case {
    uint64_t produce, consume, consume_header, total;
  } cases[] = {
      {4096, 4096, 8192, 16384},  // 1 + 1 + 1 + 1 pages
      {1, 0, 8192, 12288},        // a size-0 queue has only its header page
      {0, 4097, 4096, 16384},     // 1 + 0 + 1 + 2
      {1 << 20, 64, 4096 + (1 << 20), 4096 + (1 << 20) + 8192},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.produce) + "/" + std::to_string(c.consume));
    const QueuePairLayout l = queue_pair_layout(c.produce, c.consume);
    EXPECT_EQ(l.produce_header, 0u);
    EXPECT_EQ(l.produce_data, 4096u);
    EXPECT_EQ(l.consume_header, c.consume_header);
    EXPECT_EQ(l.consume_data, c.consume_header + 4096);
    EXPECT_EQ(l.total, c.total);
  }
}

TEST(QueueLayout, CreatorAndAttacherViewsCrossLink) {
  const QueuePairLayout l = queue_pair_layout(8192, 4096);
  std::vector<uint8_t> memory(l.total);
  const QueuePairView creator = creator_view(memory.data(), 8192, 4096);
  const QueuePairView attacher = attacher_view(memory.data(), 8192, 4096);
  init_queue_header(creator.produce_header, VMCI_MAKE_HANDLE(16, 1024));
  init_queue_header(creator.consume_header, VMCI_MAKE_HANDLE(16, 1024));
  EXPECT_EQ(attacher.produce_header, creator.consume_header);
  EXPECT_EQ(attacher.produce_size, 4096u);
  EXPECT_EQ(produce_free_space(creator), 8191);
  EXPECT_EQ(produce_free_space(attacher), 4095);
  const auto data = bytes(100, 7);
  ASSERT_EQ(enqueue(creator, data.data(), data.size()), 100);
  std::vector<uint8_t> got(100);
  ASSERT_EQ(dequeue(attacher, got.data(), got.size()), 100);
  EXPECT_EQ(got, data);
  EXPECT_EQ(memory[l.produce_data + 99], data[99]) << "the creator's data pages follow its header";
}

// One producer thread and one consumer thread on the two endpoints: the
// contract of the kernel API. Under ThreadSanitizer this checks the
// release/acquire publication of the indices.
TEST(Queue, ProducerAndConsumerThreads) {
  PairMemory m(4097, 64);
  const auto stream = bytes(1 << 21, 9);
  std::vector<uint8_t> out(stream.size());
  std::thread producer([&] {
    std::mt19937 rng(1);
    std::uniform_int_distribution<size_t> chunk(1, 9000);
    for (size_t sent = 0; sent < stream.size();) {
      const int64_t put =
          enqueue(m.creator(), stream.data() + sent, std::min(chunk(rng), stream.size() - sent));
      if (put > 0) {
        sent += static_cast<size_t>(put);
      } else {
        std::this_thread::yield();
      }
    }
  });
  std::mt19937 rng(2);
  std::uniform_int_distribution<size_t> chunk(1, 7000);
  for (size_t received = 0; received < stream.size();) {
    const int64_t got = dequeue(m.attacher(), out.data() + received,
                                std::min(chunk(rng), stream.size() - received));
    if (got > 0) {
      received += static_cast<size_t>(got);
    } else {
      std::this_thread::yield();
    }
  }
  producer.join();
  EXPECT_EQ(out, stream);
}

}  // namespace
}  // namespace vmci::proto
