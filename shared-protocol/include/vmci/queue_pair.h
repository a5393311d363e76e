// queue_pair.h: one endpoint of a queue pair, as vmci_qpair_alloc returns
// it (spec §6). Its data calls touch only the mapped memory: they never go
// through hostpeer and never take a lock.
//
// A host endpoint lives on the guest's memory: before its guest attached,
// and from the moment it detached or died, its data calls return
// VMCI_ERROR_QUEUEPAIR_NOTATTACHED, also with unread bytes in the queue (as
// on Linux's host); a guest that wants its last bytes read must wait for the
// host (produce_buf_ready() == 0) before it detaches. A guest endpoint keeps
// its memory until it detaches.
//
// Contract: one producer thread (enqueue, enquev, produce_*) and one
// consumer thread (dequeue, dequev, peek, peekv, consume_*) may use one
// QueuePair at the same time; more callers of either kind need a lock of
// their own. The object is detached and destroyed through the Endpoint that
// allocated it (Endpoint::qpair_detach).
//
//   std::unique_ptr<vmci::QueuePair> qp;
//   vmci_handle handle = VMCI_INVALID_HANDLE;
//   ep.qpair_alloc(&qp, &handle, 65536, 65536, VMCI_INVALID_ID, 0, 0);
//   qp->enqueue("hi", 2);          // 2, a short count, or VMCI_ERROR_*
//   ep.qpair_detach(&qp);          // qp is null afterwards, whatever the result
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>

#include "vmci/proto/queue.h"
#include "vmci/proto/wake_word.h"

namespace vmci {

class QueuePair;

// One data call of a QueuePair, as an observer sees it once it returned.
struct QueuePairCall {
  enum class Op {
    kEnqueue,  // enquev too
    kDequeue,  // dequev too
    kPeek,     // peekv too
    kProduceFreeSpace,
    kProduceBufReady,
    kConsumeFreeSpace,
    kConsumeBufReady,
    kGetProduceIndexes,
    kGetConsumeIndexes,
  };
  Op op = Op::kEnqueue;
  uint64_t started_ns = 0;  // CLOCK_MONOTONIC when the call began
  uint64_t size = 0;        // bytes asked for (enqueue, dequeue, peek)
  // The bytes that moved (the first `result` bytes given or taken); empty
  // when none did. Valid only during the observer's call.
  std::span<const uint8_t> data;
  int64_t result = 0;
  uint64_t tail = 0, head = 0;  // get_*_indexes: what the call wrote back
};

// Sees every data call of the QueuePairs it is attached to (tracing). It
// is called on the caller's thread, after the call, and must be
// thread-safe: a pair's producer and consumer threads call it concurrently.
class QueuePairObserver {
 public:
  virtual ~QueuePairObserver() = default;
  virtual void observed(const QueuePair& qp, const QueuePairCall& call) = 0;
};

// What the endpoint that allocated a pair tells the pair's waiters: the
// peer is gone (a QP_PEER_DETACH for it, or hostpeer went away). Shared
// between the QueuePair and its endpoint's QueuePairWatches.
struct QueuePairPeerWatch {
  proto::NotifyWakeWord word{};  // signalled when `gone` is set
  std::atomic<bool> gone{false};
};

// An endpoint's watches of the pairs it allocated, by handle. Thread-safe.
class QueuePairWatches {
 public:
  void add(vmci_handle handle, std::weak_ptr<QueuePairPeerWatch> watch);
  // The peer of `handle` detached: its waiters return.
  void peer_gone(vmci_handle handle);
  // Every pair's (the connection to hostpeer ended).
  void all_gone();

 private:
  std::mutex mutex_;
  std::map<uint64_t, std::weak_ptr<QueuePairPeerWatch>> watches_;
};

// Where a queue's header page holds the wake word of our wait extension
// (QueuePair::wait): a proto::NotifyWakeWord past VMCI's 24-byte
// vmci_queue_header, on a cache line of its own. VMCI's drivers leave the
// rest of the page alone. Contract: the queue's consumer counts itself in
// `sleepers` while it is inside wait() (waiting for data in this queue, or
// for room in its own produce queue); the queue's producer, after each
// enqueue or dequeue that moved an index, bumps `sequence` (and makes the
// futex call if someone sleeps) only when `sleepers` is not 0. A peer that
// never signals (a real guest kernel) is looked at every 10 ms instead.
inline constexpr size_t kQueueWakeWordOffset = 64;

class QueuePair {
 public:
  // `view` lies in memory that `keep_alive` keeps mapped. `peer_attached`,
  // when not null, says whether the peer's memory is there (a host
  // endpoint's word, written by hostpeer); while it reads 0 the data calls
  // return VMCI_ERROR_QUEUEPAIR_NOTATTACHED and the queries 0 (spec §6.8).
  // `memory_generation` (hostpeer's, beside peer_attached) and
  // `mapped_generation` (the endpoint's), when given, must also be equal:
  // until the endpoint has mapped the memory hostpeer last gave the pair,
  // the peer is not attached for it.
  QueuePair(vmci_handle handle, proto::QueuePairView view, std::shared_ptr<const void> keep_alive,
            const uint32_t* peer_attached = nullptr, const uint32_t* memory_generation = nullptr,
            const uint32_t* mapped_generation = nullptr);

  vmci_handle handle() const { return handle_; }
  // The owner of the mapping: the pair's memory stays mapped while a copy
  // of it lives (an endpoint keeps one for a pair that failed to detach).
  std::shared_ptr<const void> keep_alive() const { return keep_alive_; }
  uint64_t produce_size() const { return view_.produce_size; }
  uint64_t consume_size() const { return view_.consume_size; }

  // Results as FreeBSD's vmci_qpair_* (spec §6.7, §6.8): a byte count (a
  // short one when the queue fills or empties) or a VMCI_ERROR_*.
  int64_t enqueue(const void* buf, size_t size);
  int64_t dequeue(void* buf, size_t size);
  int64_t peek(void* buf, size_t size);
  // Vectored: `iov_size` bytes in total; the iovec array is consumed in
  // place (bases advanced, lengths reduced) by the bytes copied, also by
  // peekv.
  int64_t enquev(struct iovec* iov, size_t iov_size);
  int64_t dequev(struct iovec* iov, size_t iov_size);
  int64_t peekv(struct iovec* iov, size_t iov_size);

  int64_t produce_free_space() const;
  int64_t produce_buf_ready() const;
  int64_t consume_free_space() const;
  int64_t consume_buf_ready() const;
  // Null out-pointers are allowed. VMCI_ERROR_INVALID_SIZE when an index is
  // beyond its queue.
  int get_produce_indexes(uint64_t* producer_tail, uint64_t* consumer_head) const;
  int get_consume_indexes(uint64_t* consumer_tail, uint64_t* producer_head) const;

  // Our extension (not in VMCI's API): waits until the consume queue holds
  // data (kData) or the produce queue has room (kSpace), the peer is gone,
  // or `timeout` passes; a negative timeout waits without end. Returns the
  // bytes ready (consume_buf_ready) or free (produce_free_space), > 0;
  // VMCI_ERROR_TIMEOUT; or VMCI_ERROR_QUEUEPAIR_NOTATTACHED when the peer
  // is not attached (a host endpoint before its guest attached) or went
  // away (detached, died, or hostpeer went) and there is nothing to take.
  //
  // It announces itself in the wake word of its consume queue's header page
  // (kQueueWakeWordOffset) and sleeps on it; while it is announced, the
  // peer's enqueues and dequeues (this library's) signal the word, and a
  // system call is made only to wake a sleeper. Without a waiter they only
  // load it. A peer that does not signal (a real guest kernel's driver) is
  // looked at every 10 ms instead. Called by the pair's consumer thread
  // (kData) or producer thread (kSpace).
  enum class Wait { kData, kSpace };
  int64_t wait(Wait what, std::chrono::milliseconds timeout);

  // The endpoint's side of wait(): what it sets when the peer is gone.
  std::shared_ptr<QueuePairPeerWatch> peer_watch() const { return watch_; }

  // Every later data call is shown to `observer`. Set it before the pair is
  // used: it is not synchronised with the data calls.
  void set_observer(std::shared_ptr<QueuePairObserver> observer) {
    observer_ = std::move(observer);
  }

 private:
  bool peer_attached() const;
  int64_t enqueue_direct(const void* buf, size_t size);
  int64_t dequeue_direct(void* buf, size_t size);
  int64_t peek_direct(void* buf, size_t size);
  int64_t copy_vector(struct iovec* iov, size_t iov_size, int kind);
  int64_t copy_vector_observed(struct iovec* iov, size_t iov_size, int kind);
  // A count query (not attached: 0), and an index query, shown to the
  // observer if there is one.
  int64_t count(QueuePairCall::Op op, int64_t (*query)(const proto::QueuePairView&)) const;
  int indexes(QueuePairCall::Op op, proto::QueueIndexes (*query)(const proto::QueuePairView&),
              uint64_t queue_size, uint64_t* tail, uint64_t* head) const;

  vmci_handle handle_;
  proto::QueuePairView view_;
  std::shared_ptr<const void> keep_alive_;
  uint32_t* peer_attached_;
  uint32_t* memory_generation_;
  uint32_t* mapped_generation_;
  std::shared_ptr<QueuePairObserver> observer_;
  std::shared_ptr<QueuePairPeerWatch> watch_ = std::make_shared<QueuePairPeerWatch>();
  // Tells a waiting peer that this endpoint moved an index.
  void signal_peer();
  // The producer's and the consumer's copies of the peer's index (see
  // proto::enqueue), each on its own cache line: the two threads of the
  // contract must not share one.
  alignas(64) uint64_t peer_head_;
  alignas(64) uint64_t peer_tail_;
};

}  // namespace vmci
