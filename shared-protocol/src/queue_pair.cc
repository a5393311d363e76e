#include "vmci/queue_pair.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "vmci/proto/monotonic_clock.h"

namespace vmci {
namespace {

enum Kind { kEnqueue, kDequeue, kPeek };

// Advances the iovec array by n bytes, in place.
void consume_iov(struct iovec* iov, size_t n) {
  for (; n > 0; ++iov) {
    const size_t step = std::min(n, iov->iov_len);
    iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + step;
    iov->iov_len -= step;
    n -= step;
  }
}

QueuePairCall start_call(QueuePairCall::Op op, uint64_t size) {
  QueuePairCall call;
  call.op = op;
  call.started_ns = proto::monotonic_ns();
  call.size = size;
  return call;
}

constexpr QueuePairCall::Op kCallOf[] = {QueuePairCall::Op::kEnqueue, QueuePairCall::Op::kDequeue,
                                         QueuePairCall::Op::kPeek};

// The bytes that moved: the first `result` bytes of `buf` (none when the
// call failed).
std::span<const uint8_t> moved(const void* buf, int64_t result) {
  if (result <= 0 || buf == nullptr) return {};
  return {static_cast<const uint8_t*>(buf), static_cast<size_t>(result)};
}

// Runs a data call on a plain buffer and shows it to the observer.
template <typename Call>
int64_t observe_bytes(QueuePairObserver& observer, const QueuePair& qp, QueuePairCall::Op op,
                      const void* buf, size_t size, Call&& direct) {
  QueuePairCall call = start_call(op, size);
  call.result = direct();
  call.data = moved(buf, call.result);
  observer.observed(qp, call);
  return call.result;
}

}  // namespace

QueuePair::QueuePair(vmci_handle handle, proto::QueuePairView view,
                     std::shared_ptr<const void> keep_alive, const uint32_t* peer_attached,
                     const uint32_t* memory_generation, const uint32_t* mapped_generation)
    : handle_(handle),
      view_(view),
      keep_alive_(std::move(keep_alive)),
      peer_attached_(const_cast<uint32_t*>(peer_attached)),
      memory_generation_(const_cast<uint32_t*>(memory_generation)),
      mapped_generation_(const_cast<uint32_t*>(mapped_generation)),
      // The copies start as the real indexes: a copy must never be ahead of
      // the peer's index, only behind it.
      peer_head_(proto::produce_indexes(view).head),
      peer_tail_(proto::consume_indexes(view).tail) {}

bool QueuePair::peer_attached() const {
  if (peer_attached_ == nullptr) return true;
  if (std::atomic_ref<uint32_t>(*peer_attached_).load(std::memory_order_acquire) == 0) return false;
  return memory_generation_ == nullptr || mapped_generation_ == nullptr ||
         std::atomic_ref<uint32_t>(*memory_generation_).load(std::memory_order_acquire) ==
             std::atomic_ref<uint32_t>(*mapped_generation_).load(std::memory_order_acquire);
}

int64_t QueuePair::enqueue(const void* buf, size_t size) {
  if (!observer_) return enqueue_direct(buf, size);
  return observe_bytes(*observer_, *this, QueuePairCall::Op::kEnqueue, buf, size,
                       [&] { return enqueue_direct(buf, size); });
}

int64_t QueuePair::dequeue(void* buf, size_t size) {
  if (!observer_) return dequeue_direct(buf, size);
  return observe_bytes(*observer_, *this, QueuePairCall::Op::kDequeue, buf, size,
                       [&] { return dequeue_direct(buf, size); });
}

int64_t QueuePair::peek(void* buf, size_t size) {
  if (!observer_) return peek_direct(buf, size);
  return observe_bytes(*observer_, *this, QueuePairCall::Op::kPeek, buf, size,
                       [&] { return peek_direct(buf, size); });
}

int64_t QueuePair::enqueue_direct(const void* buf, size_t size) {
  if (buf == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (!peer_attached()) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
  const int64_t n = proto::enqueue(view_, buf, size, &peer_head_);
  if (n > 0) signal_peer();
  return n;
}

int64_t QueuePair::dequeue_direct(void* buf, size_t size) {
  if (buf == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (!peer_attached()) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
  const int64_t n = proto::dequeue(view_, buf, size, &peer_tail_);
  if (n > 0) signal_peer();
  return n;
}

namespace {

proto::NotifyWakeWord* wake_word_of(vmci_queue_header* header) {
  return reinterpret_cast<proto::NotifyWakeWord*>(reinterpret_cast<uint8_t*>(header) +
                                                  kQueueWakeWordOffset);
}

std::atomic_ref<uint32_t> waiters_of(proto::NotifyWakeWord* word) {
  return std::atomic_ref<uint32_t>(word->sleepers);
}

// How often wait() looks at a peer that does not signal the wake word.
constexpr std::chrono::milliseconds kWaitRecheck{10};
// The first look after wait() announced itself: soon, for a signal lost
// to the race described in signal_peer().
constexpr std::chrono::milliseconds kFirstRecheck{1};

// wait()'s presence in the word's `sleepers` from construction to
// destruction, so that the peer signals. A process that dies inside wait()
// leaves the count up: its peer then signals every call, as if always
// watched, which costs time, never correctness.
class AnnouncedWaiter {
 public:
  explicit AnnouncedWaiter(proto::NotifyWakeWord* word) : word_(word) {
    waiters_of(word_).fetch_add(1, std::memory_order_seq_cst);
  }
  ~AnnouncedWaiter() { waiters_of(word_).fetch_sub(1, std::memory_order_seq_cst); }
  AnnouncedWaiter(const AnnouncedWaiter&) = delete;
  AnnouncedWaiter& operator=(const AnnouncedWaiter&) = delete;

 private:
  proto::NotifyWakeWord* const word_;
};

}  // namespace

namespace {

// A query reads the peer's index only after this endpoint's own last
// enqueue or dequeue is visible to the peer, as the kernel's queue-pair
// lock orders them. Without it a writer and a reader can each miss the
// other's index (store-buffering): the writer sees the old data still
// queued and sends no WROTE, the reader sees nothing queued and sleeps.
void order_after_own_writes() { std::atomic_thread_fence(std::memory_order_seq_cst); }

}  // namespace

void QueuePair::signal_peer() {
  // Only a peer inside wait() is signalled: the data path pays one load of
  // a line that is written only when a wait begins or ends, instead of an
  // atomic add (a full barrier) per call. The load is not ordered after
  // the index this call published, so a wait() announced at that very
  // instant may miss the index and the signal; it looks again
  // kFirstRecheck after announcing, by when the index is visible.
  proto::NotifyWakeWord* const word = wake_word_of(view_.produce_header);
  if (waiters_of(word).load(std::memory_order_relaxed) != 0) proto::signal_and_wake(word);
}

int64_t QueuePair::wait(Wait what, std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const bool forever = timeout.count() < 0;
  const Clock::time_point deadline = forever ? Clock::time_point::max() : Clock::now() + timeout;
  proto::NotifyWakeWord* const words[2] = {wake_word_of(view_.consume_header), &watch_->word};
  const AnnouncedWaiter announced(words[0]);
  auto slice = kFirstRecheck;
  for (;; slice = kWaitRecheck) {
    const uint32_t seen[2] = {proto::sequence(words[0]), proto::sequence(words[1])};
    if (!peer_attached()) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
    const int64_t n = what == Wait::kData ? proto::consume_buf_ready(view_)
                                          : proto::produce_free_space(view_);
    if (n != 0) return n;  // ready, or VMCI_ERROR_INVALID_SIZE
    if (watch_->gone.load(std::memory_order_acquire)) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return VMCI_ERROR_TIMEOUT;
    if (!forever) {
      slice = std::min(slice, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
    }
    proto::wait_for_any(words, seen, slice);
  }
}

void QueuePairWatches::add(vmci_handle handle, std::weak_ptr<QueuePairPeerWatch> watch) {
  std::lock_guard lock(mutex_);
  std::erase_if(watches_, [](const auto& entry) { return entry.second.expired(); });
  watches_[(uint64_t{handle.context} << 32) | handle.resource] = std::move(watch);
}

namespace {

void set_gone(QueuePairPeerWatch& watch) {
  watch.gone.store(true, std::memory_order_release);
  proto::signal_and_wake(&watch.word);
}

}  // namespace

void QueuePairWatches::peer_gone(vmci_handle handle) {
  std::shared_ptr<QueuePairPeerWatch> watch;
  {
    std::lock_guard lock(mutex_);
    auto it = watches_.find((uint64_t{handle.context} << 32) | handle.resource);
    if (it != watches_.end()) watch = it->second.lock();
  }
  if (watch) set_gone(*watch);
}

void QueuePairWatches::all_gone() {
  std::lock_guard lock(mutex_);
  for (auto& [key, weak] : watches_) {
    if (auto watch = weak.lock()) set_gone(*watch);
  }
}

int64_t QueuePair::peek_direct(void* buf, size_t size) {
  if (buf == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (!peer_attached()) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
  return proto::peek(view_, buf, size, &peer_tail_);
}

// Gathers what moved from a copy of the iovec array taken before the call
// (the call advances the array itself).
int64_t QueuePair::copy_vector_observed(struct iovec* iov, size_t iov_size, int kind) {
  QueuePairCall call = start_call(kCallOf[kind], iov_size);
  std::vector<struct iovec> before;
  for (size_t at = 0, i = 0; iov != nullptr && at < iov_size; ++i) {
    before.push_back(iov[i]);
    at += iov[i].iov_len;
  }
  call.result = copy_vector(iov, iov_size, kind);
  std::vector<uint8_t> bytes;
  for (const struct iovec& v : before) {
    if (bytes.size() >= static_cast<size_t>(std::max<int64_t>(call.result, 0))) break;
    const size_t step = std::min(static_cast<size_t>(call.result) - bytes.size(), v.iov_len);
    const auto* base = static_cast<const uint8_t*>(v.iov_base);
    bytes.insert(bytes.end(), base, base + step);
  }
  call.data = bytes;
  observer_->observed(*this, call);
  return call.result;
}

int64_t QueuePair::copy_vector(struct iovec* iov, size_t iov_size, int kind) {
  if (iov == nullptr) return VMCI_ERROR_INVALID_ARGS;
  if (!peer_attached()) return VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
  // The ring copies at most two pieces; gather or scatter through a
  // contiguous buffer only when the iovec has several entries.
  if (iov_size <= iov->iov_len) {
    int64_t n;
    if (kind == kEnqueue) {
      n = proto::enqueue(view_, iov->iov_base, iov_size, &peer_head_);
    } else {
      n = kind == kDequeue ? proto::dequeue(view_, iov->iov_base, iov_size, &peer_tail_)
                           : proto::peek(view_, iov->iov_base, iov_size, &peer_tail_);
    }
    if (n > 0) {
      consume_iov(iov, static_cast<size_t>(n));
      if (kind != kPeek) signal_peer();
    }
    return n;
  }
  std::vector<uint8_t> buffer;
  int64_t n;
  if (kind == kEnqueue) {
    const int64_t free = proto::produce_free_space(view_);
    if (free <= 0) return free == 0 ? VMCI_ERROR_QUEUEPAIR_NOSPACE : free;
    buffer.resize(std::min<uint64_t>(static_cast<uint64_t>(free), iov_size));
    size_t at = 0;
    for (const struct iovec* v = iov; at < buffer.size(); ++v) {
      const size_t step = std::min(buffer.size() - at, v->iov_len);
      std::copy_n(static_cast<const uint8_t*>(v->iov_base), step, buffer.data() + at);
      at += step;
    }
    n = proto::enqueue(view_, buffer.data(), buffer.size(), &peer_head_);
  } else {
    const int64_t ready = proto::consume_buf_ready(view_);
    if (ready <= 0) return ready == 0 ? VMCI_ERROR_QUEUEPAIR_NODATA : ready;
    buffer.resize(std::min<uint64_t>(static_cast<uint64_t>(ready), iov_size));
    n = kind == kDequeue ? proto::dequeue(view_, buffer.data(), buffer.size(), &peer_tail_)
                         : proto::peek(view_, buffer.data(), buffer.size(), &peer_tail_);
    size_t at = 0;
    for (struct iovec* v = iov; n > 0 && at < static_cast<size_t>(n); ++v) {
      const size_t step = std::min(static_cast<size_t>(n) - at, v->iov_len);
      std::copy_n(buffer.data() + at, step, static_cast<uint8_t*>(v->iov_base));
      at += step;
    }
  }
  if (n > 0) {
    consume_iov(iov, static_cast<size_t>(n));
    if (kind != kPeek) signal_peer();
  }
  return n;
}

int64_t QueuePair::enquev(struct iovec* iov, size_t iov_size) {
  return observer_ ? copy_vector_observed(iov, iov_size, kEnqueue)
                   : copy_vector(iov, iov_size, kEnqueue);
}
int64_t QueuePair::dequev(struct iovec* iov, size_t iov_size) {
  return observer_ ? copy_vector_observed(iov, iov_size, kDequeue)
                   : copy_vector(iov, iov_size, kDequeue);
}
int64_t QueuePair::peekv(struct iovec* iov, size_t iov_size) {
  return observer_ ? copy_vector_observed(iov, iov_size, kPeek)
                   : copy_vector(iov, iov_size, kPeek);
}

int64_t QueuePair::count(QueuePairCall::Op op,
                         int64_t (*query)(const proto::QueuePairView&)) const {
  order_after_own_writes();
  // Not attached: the queries return 0 (spec §6.8).
  if (!observer_) return peer_attached() ? query(view_) : 0;
  QueuePairCall call = start_call(op, 0);
  call.result = peer_attached() ? query(view_) : 0;
  observer_->observed(*this, call);
  return call.result;
}

int64_t QueuePair::produce_free_space() const {
  return count(QueuePairCall::Op::kProduceFreeSpace, proto::produce_free_space);
}
int64_t QueuePair::produce_buf_ready() const {
  return count(QueuePairCall::Op::kProduceBufReady, proto::produce_buf_ready);
}
int64_t QueuePair::consume_free_space() const {
  return count(QueuePairCall::Op::kConsumeFreeSpace, proto::consume_free_space);
}
int64_t QueuePair::consume_buf_ready() const {
  return count(QueuePairCall::Op::kConsumeBufReady, proto::consume_buf_ready);
}

int QueuePair::indexes(QueuePairCall::Op op, proto::QueueIndexes (*query)(const proto::QueuePairView&),
                       uint64_t queue_size, uint64_t* tail, uint64_t* head) const {
  order_after_own_writes();
  QueuePairCall call;
  call.op = op;
  if (observer_) call.started_ns = proto::monotonic_ns();  // no clock read untraced
  if (!peer_attached()) {
    call.result = VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
  } else {
    const proto::QueueIndexes i = query(view_);
    call.tail = i.tail;
    call.head = i.head;
    if (tail) *tail = i.tail;
    if (head) *head = i.head;
    call.result =
        i.tail >= queue_size || i.head >= queue_size ? VMCI_ERROR_INVALID_SIZE : VMCI_SUCCESS;
  }
  if (observer_) observer_->observed(*this, call);
  return static_cast<int>(call.result);
}

int QueuePair::get_produce_indexes(uint64_t* producer_tail, uint64_t* consumer_head) const {
  return indexes(QueuePairCall::Op::kGetProduceIndexes, proto::produce_indexes, view_.produce_size,
                 producer_tail, consumer_head);
}

int QueuePair::get_consume_indexes(uint64_t* consumer_tail, uint64_t* producer_head) const {
  return indexes(QueuePairCall::Op::kGetConsumeIndexes, proto::consume_indexes, view_.consume_size,
                 consumer_tail, producer_head);
}

}  // namespace vmci
