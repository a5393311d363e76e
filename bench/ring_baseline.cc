// ring_baseline.cc: the shared-memory SPSC ring (see ring_baseline.h).
#include "ring_baseline.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>

namespace bench {
namespace {

struct RingIndexes {
  alignas(128) std::atomic<uint64_t> tail{0};  // written by the producer
  alignas(128) std::atomic<uint64_t> head{0};  // written by the consumer
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// The data starts on its own page after the indexes.
constexpr size_t kDataOffset = 4096;
constexpr size_t kMemorySize = kDataOffset + kRingSize;
static_assert(sizeof(RingIndexes) <= kDataOffset);
static_assert((kRingSize & (kRingSize - 1)) == 0);

class Ring {
 public:
  explicit Ring(uint8_t* memory)
      : idx_(reinterpret_cast<RingIndexes*>(memory)), data_(memory + kDataOffset) {}

 protected:
  RingIndexes* idx_;
  uint8_t* data_;
};

class RingProducer : Ring {
 public:
  using Ring::Ring;
  int64_t send(const void* buf, size_t n) {
    uint64_t free = kRingSize - (tail_ - head_copy_);
    if (free < n) {
      head_copy_ = idx_->head.load(std::memory_order_acquire);
      free = kRingSize - (tail_ - head_copy_);
      if (free == 0) return 0;
    }
    const size_t count = std::min<uint64_t>(free, n);
    const size_t at = tail_ & (kRingSize - 1);
    const size_t first = std::min(count, kRingSize - at);
    std::memcpy(data_ + at, buf, first);
    if (count > first) std::memcpy(data_, static_cast<const uint8_t*>(buf) + first, count - first);
    tail_ += count;
    idx_->tail.store(tail_, std::memory_order_release);
    return static_cast<int64_t>(count);
  }

 private:
  uint64_t tail_ = 0;       // mine
  uint64_t head_copy_ = 0;  // the consumer's, as last read
};

class RingConsumer : Ring {
 public:
  using Ring::Ring;
  int64_t recv(void* buf, size_t n) {
    uint64_t ready = tail_copy_ - head_;
    if (ready < n) {
      tail_copy_ = idx_->tail.load(std::memory_order_acquire);
      ready = tail_copy_ - head_;
      if (ready == 0) return 0;
    }
    const size_t count = std::min<uint64_t>(ready, n);
    const size_t at = head_ & (kRingSize - 1);
    const size_t first = std::min(count, kRingSize - at);
    std::memcpy(buf, data_ + at, first);
    if (count > first) std::memcpy(static_cast<uint8_t*>(buf) + first, data_, count - first);
    head_ += count;
    idx_->head.store(head_, std::memory_order_release);
    return static_cast<int64_t>(count);
  }

 private:
  uint64_t head_ = 0;       // mine
  uint64_t tail_copy_ = 0;  // the producer's, as last read
};

}  // namespace

Measurement run_ring_trial(const StreamParams& params) {
  ControlPage control;
  UniqueFd memory_fd = make_memfd("vmci-bench-ring", kMemorySize);
  Mapping memory(memory_fd.get(), kMemorySize);
  new (memory.data()) RingIndexes();

  ChildArgs args;
  args.transport = "ring";
  args.parent = ::getpid();
  args.chunk = params.chunk;
  args.control_fd = control.fd();
  args.data_fd = memory_fd.get();
  Child child(args.to_command(), {control.fd(), memory_fd.get()});

  RingConsumer consumer(memory.data());
  const Measurement m = consume(consumer, control.get(), child, params);
  child.wait_success(30);
  return m;
}

void ring_child(const ChildArgs& args, Control& control) {
  if (fd_size(args.data_fd) < kMemorySize) throw std::runtime_error("ring memory too small");
  Mapping memory(args.data_fd, kMemorySize);
  RingProducer producer(memory.data());
  produce(producer, control, args.chunk);
  wait_for_consumer(control);
}

}  // namespace bench
