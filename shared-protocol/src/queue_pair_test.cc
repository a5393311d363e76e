// QueuePair over plain memory: the vectored calls, the status word of a
// host endpoint, and the hypercall messages of spec §4.5.
#include "vmci/queue_pair.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/proto/shared_memory.h"
#include "vmci/proto/wake_word.h"

namespace vmci {
namespace {

struct Pair {
  explicit Pair(uint64_t produce, uint64_t consume) {
    std::string error;
    memory = proto::SharedMemory::anonymous(proto::queue_pair_layout(produce, consume).total, &error);
    const auto c = proto::creator_view(memory->data(), produce, consume);
    proto::init_queue_header(c.produce_header, VMCI_MAKE_HANDLE(16, 1));
    proto::init_queue_header(c.consume_header, VMCI_MAKE_HANDLE(16, 1));
    creator = std::make_unique<QueuePair>(VMCI_MAKE_HANDLE(16, 1), c, memory);
    attacher = std::make_unique<QueuePair>(
        VMCI_MAKE_HANDLE(16, 1), proto::attacher_view(memory->data(), produce, consume), memory,
        &status);
  }
  std::shared_ptr<proto::SharedMemory> memory;
  uint32_t status = 1;  // the attacher plays a host endpoint with this status word
  std::unique_ptr<QueuePair> creator, attacher;
};

TEST(QueuePair, VectoredCallsGatherScatterAndAdvanceTheIovecsInPlace) {
  Pair p(16, 16);
  char a[] = "abc", b[] = "defgh";
  iovec in[] = {{a, 3}, {nullptr, 0}, {b, 5}};
  EXPECT_EQ(p.creator->enquev(in, 8), 8);
  EXPECT_EQ(in[0].iov_len, 0u);
  EXPECT_EQ(in[2].iov_len, 0u);
  EXPECT_EQ(static_cast<char*>(in[2].iov_base), b + 5);

  char x[3] = {}, y[10] = {};
  iovec peek_out[] = {{x, 3}, {y, 10}};
  EXPECT_EQ(p.attacher->peekv(peek_out, 13), 8);  // peekv advances too (FreeBSD)
  EXPECT_EQ(peek_out[0].iov_len, 0u);
  EXPECT_EQ(peek_out[1].iov_len, 5u);
  EXPECT_EQ(std::string(x, 3) + std::string(y, 5), "abcdefgh");

  char z[20] = {};
  iovec out[] = {{z, 20}};
  EXPECT_EQ(p.attacher->dequev(out, 20), 8);
  EXPECT_EQ(std::string(z, 8), "abcdefgh");
  EXPECT_EQ(out[0].iov_len, 12u);
  EXPECT_EQ(p.attacher->dequev(out, 12), VMCI_ERROR_QUEUEPAIR_NODATA);
}

// Records what an observer is shown.
struct Recorded : QueuePairObserver {
  struct Seen {
    QueuePairCall::Op op;
    uint64_t size;
    std::string data;
    int64_t result;
    uint64_t tail, head;
  };
  void observed(const QueuePair&, const QueuePairCall& c) override {
    EXPECT_GT(c.started_ns, 0u);
    calls.push_back({c.op, c.size, std::string(c.data.begin(), c.data.end()), c.result, c.tail,
                     c.head});
  }
  std::vector<Seen> calls;
};

TEST(QueuePair, AnObserverSeesEachCallWithTheBytesThatMovedVectoredOrNot) {
  Pair p(16, 16);
  auto seen = std::make_shared<Recorded>();
  p.creator->set_observer(seen);
  p.attacher->set_observer(seen);
  char a[] = "abc", b[] = "defgh";
  iovec in[] = {{a, 3}, {b, 5}};
  ASSERT_EQ(p.creator->enquev(in, 8), 8);
  ASSERT_EQ(p.creator->enqueue("0123456789", 10), 7);  // 15 bytes fit in a 16-byte queue
  char out[6] = {};
  iovec scatter[] = {{out, 2}, {out + 2, 4}};
  ASSERT_EQ(p.attacher->dequev(scatter, 6), 6);
  char rest[20] = {};
  ASSERT_EQ(p.attacher->peek(rest, 20), 9);
  ASSERT_EQ(p.attacher->consume_buf_ready(), 9);
  uint64_t tail = 0, head = 0;
  ASSERT_EQ(p.creator->get_produce_indexes(&tail, &head), VMCI_SUCCESS);
  p.status = 0;  // the creator went: the host endpoint sees nothing
  ASSERT_EQ(p.attacher->dequeue(rest, 20), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);

  using Op = QueuePairCall::Op;
  ASSERT_EQ(seen->calls.size(), 7u);
  const auto& c = seen->calls;
  EXPECT_EQ(c[0].op, Op::kEnqueue);
  EXPECT_EQ(c[0].data, "abcdefgh");
  EXPECT_EQ(c[1].size, 10u);
  EXPECT_EQ(c[1].data, "0123456") << "only what went in";
  EXPECT_EQ(c[2].op, Op::kDequeue);
  EXPECT_EQ(c[2].data, "abcdef");
  EXPECT_EQ(c[3].op, Op::kPeek);
  EXPECT_EQ(c[3].data, "gh0123456");
  EXPECT_EQ(c[4].op, Op::kConsumeBufReady);
  EXPECT_EQ(c[4].result, 9);
  EXPECT_EQ(c[5].op, Op::kGetProduceIndexes);
  EXPECT_EQ(c[5].tail, tail);
  EXPECT_EQ(c[5].tail, 15u);
  EXPECT_EQ(c[5].head, head);
  EXPECT_EQ(c[6].result, VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(c[6].data, "");
}

TEST(QueuePair, VectoredEnqueueIntoAFullQueueIsNoSpaceAndPartialWhenNearlyFull) {
  Pair p(8, 8);
  char data[] = "0123456789";
  iovec in[] = {{data, 4}, {data + 4, 6}};
  EXPECT_EQ(p.creator->enquev(in, 10), 7);  // S - 1
  EXPECT_EQ(in[0].iov_len, 0u);
  EXPECT_EQ(in[1].iov_len, 3u);
  EXPECT_EQ(p.creator->enquev(in, 3), VMCI_ERROR_QUEUEPAIR_NOSPACE);
}

TEST(QueuePair, NullBuffersAreInvalidArgs) {
  Pair p(8, 8);
  EXPECT_EQ(p.creator->enqueue(nullptr, 1), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(p.creator->dequeue(nullptr, 1), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(p.creator->peekv(nullptr, 1), VMCI_ERROR_INVALID_ARGS);
}

TEST(QueuePair, HostEndpointWithoutItsGuestIsNotAttachedAndQueriesAreZero) {
  Pair p(64, 64);
  p.status = 0;
  char c = 'x';
  EXPECT_EQ(p.attacher->enqueue(&c, 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(p.attacher->dequeue(&c, 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(p.attacher->produce_free_space(), 0);
  EXPECT_EQ(p.attacher->consume_free_space(), 0);
  EXPECT_EQ(p.attacher->get_consume_indexes(nullptr, nullptr), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  p.status = 1;
  EXPECT_EQ(p.attacher->produce_free_space(), 63);
  EXPECT_EQ(p.attacher->enqueue(&c, 1), 1);
}

TEST(QueuePairHypercalls, AllocMessageRoundTripsAndMayExceedTheDatagramLimit_Item33) {
  const vmci_handle h = VMCI_MAKE_HANDLE(16, 1024);
  const auto msg = proto::make_qp_alloc_message(h, 2, VMCI_QPFLAG_ATTACH_ONLY, 64 << 20, 64 << 20);
  EXPECT_GT(msg.size(), VMCI_MAX_DG_SIZE);
  EXPECT_TRUE(proto::is_qp_alloc_hypercall(msg));
  proto::QpAllocFields f;
  ASSERT_EQ(proto::parse_qp_alloc_message(msg, &f), VMCI_SUCCESS);
  EXPECT_EQ(f.handle.resource, 1024u);
  EXPECT_EQ(f.peer, 2u);
  EXPECT_EQ(f.flags, uint32_t{VMCI_QPFLAG_ATTACH_ONLY});
  EXPECT_EQ(f.produce_size, uint64_t{64} << 20);
  EXPECT_EQ(proto::qp_page_count(4096, 1), 4u);
}

TEST(QueuePairHypercalls, MalformedAllocMessagesAreRefused) {
  auto msg = proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(16, 1), VMCI_INVALID_ID, 0, 8192, 4096);
  proto::QpAllocFields f;
  auto truncated = msg;
  truncated.pop_back();
  EXPECT_EQ(proto::parse_qp_alloc_message(truncated, &f), VMCI_ERROR_INVALID_ARGS);
  auto wrong_pages = msg;
  uint64_t pages = 3;  // 8192 + 4096 needs 5
  std::memcpy(wrong_pages.data() + 56, &pages, sizeof pages);
  EXPECT_EQ(proto::parse_qp_alloc_message(wrong_pages, &f), VMCI_ERROR_INVALID_ARGS);
  auto huge = msg;
  const uint64_t size = ~uint64_t{0};
  std::memcpy(huge.data() + 40, &size, sizeof size);
  EXPECT_EQ(proto::parse_qp_alloc_message(huge, &f), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(proto::parse_qp_alloc_message(std::vector<uint8_t>(10), &f), VMCI_ERROR_INVALID_ARGS);
}

TEST(QueuePairHypercalls, ClientChecksInFreeBsdOrder) {
  EXPECT_EQ(proto::check_qpair_alloc(false, false, 128 << 20, 1, VMCI_QPFLAG_NONBLOCK),
            VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(proto::check_qpair_alloc(true, true, ~uint64_t{0}, 2, 0), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(proto::check_qpair_alloc(true, true, 1, 1, VMCI_QPFLAG_NONBLOCK),
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(proto::check_qpair_alloc(true, true, 0, 0, 0), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(proto::check_qpair_alloc(true, true, 1, 1, 0x8), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(proto::check_qpair_alloc(false, true, 1, 1, 0), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(proto::check_qpair_alloc(true, true, 0, 1, VMCI_QPFLAG_LOCAL), VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci

namespace vmci {
namespace {

// The copy of the peer's index starts from the real one: an endpoint made
// for a queue that has already wrapped must not think it has more room.
TEST(QueuePair, ANewEndpointOnAWrappedQueueSeesTheRealFreeSpace) {
  Pair p(4096, 4096);
  std::vector<uint8_t> buf(4000, 1);
  ASSERT_EQ(p.creator->enqueue(buf.data(), 4000), 4000);
  ASSERT_EQ(p.attacher->dequeue(buf.data(), 4000), 4000);
  ASSERT_EQ(p.creator->enqueue(buf.data(), 4000), 4000);  // wraps: tail 3904, head 4000
  // A second view of the creator's side, as a new local attach would get.
  QueuePair again(VMCI_MAKE_HANDLE(16, 1),
                  proto::creator_view(p.memory->data(), 4096, 4096), p.memory);
  EXPECT_EQ(again.produce_free_space(), 95);
  EXPECT_EQ(again.enqueue(buf.data(), 100), 95);  // a copy starting at 0 would allow 191
}

TEST(QueuePair, CachedIndexesGiveTheSameResultsAsFreshOnes) {
  Pair p(100, 100);
  std::vector<uint8_t> buf(200, 7);
  // Fill, drain partly from the other side, then ask for more than the
  // stale copy shows: the shared index is read again.
  EXPECT_EQ(p.creator->enqueue(buf.data(), 99), 99);
  EXPECT_EQ(p.creator->enqueue(buf.data(), 0), VMCI_ERROR_QUEUEPAIR_NOSPACE);
  EXPECT_EQ(p.attacher->dequeue(buf.data(), 30), 30);
  EXPECT_EQ(p.creator->enqueue(buf.data(), 50), 30);
  EXPECT_EQ(p.attacher->dequeue(buf.data(), 0), 0);
  EXPECT_EQ(p.attacher->dequeue(buf.data(), 200), 99);
  EXPECT_EQ(p.attacher->dequeue(buf.data(), 0), VMCI_ERROR_QUEUEPAIR_NODATA);
}


// The wake word of each queue's header page (kQueueWakeWordOffset): its
// producer signals it only while the consumer is inside wait(), which
// waits on it for data and for room alike.
proto::NotifyWakeWord* wake_word(vmci_queue_header* header) {
  return reinterpret_cast<proto::NotifyWakeWord*>(reinterpret_cast<uint8_t*>(header) +
                                                  kQueueWakeWordOffset);
}

uint32_t waiters(const proto::NotifyWakeWord* word) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(word->sleepers)).load();
}

// Waits until a thread is inside wait() on `word` (5 s at most).
bool someone_waits_on(const proto::NotifyWakeWord* word) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (waiters(word) == 0) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(QueuePairWakeWord, NobodyWaiting_EnqueueAndDequeueLeaveTheWordAlone) {
  Pair p(4096, 4096);
  const auto view = proto::creator_view(p.memory->data(), 4096, 4096);
  proto::NotifyWakeWord* const to_attacher = wake_word(view.produce_header);
  proto::NotifyWakeWord* const to_creator = wake_word(view.consume_header);
  char buf[8] = {};
  ASSERT_EQ(p.creator->enqueue("abc", 3), 3);
  ASSERT_EQ(p.attacher->dequeue(buf, 3), 3);
  ASSERT_EQ(p.attacher->enqueue("de", 2), 2);
  ASSERT_EQ(p.creator->dequeue(buf, 2), 2);
  EXPECT_EQ(proto::sequence(to_attacher), 0u);
  EXPECT_EQ(proto::sequence(to_creator), 0u);
}

TEST(QueuePairWakeWord, AWaiterForDataIsSignalledByTheEnqueue) {
  Pair p(4096, 4096);
  proto::NotifyWakeWord* const word =
      wake_word(proto::creator_view(p.memory->data(), 4096, 4096).produce_header);
  auto waiting = std::async(std::launch::async,
                            [&] { return p.attacher->wait(QueuePair::Wait::kData, std::chrono::seconds(30)); });
  ASSERT_TRUE(someone_waits_on(word));
  ASSERT_EQ(p.creator->enqueue("abc", 3), 3);
  EXPECT_EQ(waiting.get(), 3);
  EXPECT_EQ(proto::sequence(word), 1u);
  EXPECT_EQ(waiters(word), 0u);  // wait() took itself out
}

TEST(QueuePairWakeWord, AWaiterForRoomIsSignalledByThePeersDequeue) {
  Pair p(100, 100);
  proto::NotifyWakeWord* const word =
      wake_word(proto::creator_view(p.memory->data(), 100, 100).produce_header);
  std::vector<uint8_t> buf(99, 1);
  ASSERT_EQ(p.attacher->enqueue(buf.data(), 99), 99);  // the attacher's produce queue is full
  auto waiting = std::async(std::launch::async,
                            [&] { return p.attacher->wait(QueuePair::Wait::kSpace, std::chrono::seconds(30)); });
  ASSERT_TRUE(someone_waits_on(word));
  ASSERT_EQ(p.creator->dequeue(buf.data(), 10), 10);
  EXPECT_EQ(waiting.get(), 10);
  EXPECT_EQ(proto::sequence(word), 1u);
}

TEST(QueuePairWakeWord, WaitWithNothingComingTimesOut) {
  Pair p(4096, 4096);
  EXPECT_EQ(p.attacher->wait(QueuePair::Wait::kData, std::chrono::milliseconds(0)), VMCI_ERROR_TIMEOUT);
  EXPECT_EQ(p.attacher->wait(QueuePair::Wait::kData, std::chrono::milliseconds(20)), VMCI_ERROR_TIMEOUT);
  EXPECT_EQ(p.attacher->wait(QueuePair::Wait::kSpace, std::chrono::milliseconds(0)), 4095);
}

}  // namespace
}  // namespace vmci

namespace vmci {
namespace {

// One round of the store-buffering litmus test on a queue that holds one
// byte: the producer adds a byte and asks produce_buf_ready (VMCI's "was it
// empty?" test before a WROTE notification), while the consumer takes the
// byte it saw and asks consume_buf_ready (its "is there more?" test before
// it sleeps). Each publishes its index, then reads the other's: if both
// reads missed the other's write, the producer would see 2 bytes (no
// notification) and the consumer 0 (sleep), with a byte in the queue and
// nobody to wake the consumer. A query must therefore be ordered after the
// caller's own enqueue or dequeue, as the kernel's queue-pair lock orders it.
TEST(QueuePair, AQueryIsOrderedAfterTheCallersOwnEnqueueOrDequeue) {
  Pair p(4096, 4096);
  ASSERT_EQ(p.creator->enqueue("a", 1), 1);
  constexpr int kRounds = 200000;
  std::atomic<int> go{0}, done{0};
  std::vector<int64_t> producer_saw(kRounds), consumer_saw(kRounds);
  std::vector<int64_t> enqueued(kRounds), dequeued(kRounds);
  std::thread consumer([&] {
    char byte;
    for (int round = 1; round <= kRounds; ++round) {
      while (go.load(std::memory_order_acquire) < round) {
      }
      dequeued[round - 1] = p.attacher->dequeue(&byte, 1);
      consumer_saw[round - 1] = p.attacher->consume_buf_ready();
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  });
  for (int round = 1; round <= kRounds; ++round) {
    go.store(round, std::memory_order_release);
    enqueued[round - 1] = p.creator->enqueue("b", 1);
    producer_saw[round - 1] = p.creator->produce_buf_ready();
    while (done.load(std::memory_order_acquire) < round) {
    }
  }
  consumer.join();
  int lost = 0, failed_calls = 0;
  for (int round = 0; round < kRounds; ++round) {
    if (enqueued[round] != 1 || dequeued[round] != 1) ++failed_calls;
    if (producer_saw[round] == 2 && consumer_saw[round] == 0) ++lost;
  }
  EXPECT_EQ(failed_calls, 0);
  EXPECT_EQ(lost, 0) << "rounds in which neither side saw the other's index";
}

}  // namespace
}  // namespace vmci
