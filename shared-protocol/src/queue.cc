#include "vmci/proto/queue.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "vmci/proto/ring.h"

namespace vmci::proto {
namespace {

// The shared indices: 64-bit atomics on the header's fields.
std::atomic_ref<uint64_t> index(volatile uint64_t& field) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(field));
}

uint64_t load_acquire(volatile uint64_t& field) {
  return index(field).load(std::memory_order_acquire);
}

void store_release(volatile uint64_t& field, uint64_t value) {
  index(field).store(value, std::memory_order_release);
}

// My own index: only I write it, so a relaxed load is enough.
uint64_t load_own(volatile uint64_t& field) { return index(field).load(std::memory_order_relaxed); }

// The peer's index: the caller's copy while `enough` says it will do, else
// the shared one (read with acquire, and copied).
template <typename Enough>
uint64_t peer_index(volatile uint64_t& shared, uint64_t* copy, Enough enough) {
  if (copy != nullptr && enough(*copy)) return *copy;
  const uint64_t value = load_acquire(shared);
  if (copy != nullptr) *copy = value;
  return value;
}

int64_t copy_out(const QueuePairView& qp, void* buf, size_t n, bool consume, uint64_t* copy) {
  const uint64_t head = load_own(qp.produce_header->consumer_head);
  const uint64_t tail = peer_index(qp.consume_header->producer_tail, copy, [&](uint64_t t) {
    const int64_t ready = buf_ready(t, head, qp.consume_size);
    return ready > 0 && static_cast<uint64_t>(ready) >= n;
  });
  const int64_t ready = buf_ready(tail, head, qp.consume_size);
  if (ready < 0) return ready;
  if (ready == 0) return VMCI_ERROR_QUEUEPAIR_NODATA;
  const uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(ready), n);
  const RingSpan span = ring_span(head, count, qp.consume_size);
  auto* out = static_cast<uint8_t*>(buf);
  if (span.first) std::memcpy(out, qp.consume_data + head, span.first);
  if (span.second) std::memcpy(out + span.first, qp.consume_data, span.second);
  if (consume)
    store_release(qp.produce_header->consumer_head, advance(head, count, qp.consume_size));
  return static_cast<int64_t>(count);
}

}  // namespace

void init_queue_header(vmci_queue_header* header, vmci_handle handle) {
  header->handle = handle;
  store_release(header->producer_tail, 0);
  store_release(header->consumer_head, 0);
}

QueuePairLayout queue_pair_layout(uint64_t produce_size, uint64_t consume_size) {
  auto pages = [](uint64_t bytes) { return (bytes + kQueuePageSize - 1) / kQueuePageSize; };
  QueuePairLayout l;
  l.produce_header = 0;
  l.produce_data = kQueuePageSize;
  l.consume_header = l.produce_data + pages(produce_size) * kQueuePageSize;
  l.consume_data = l.consume_header + kQueuePageSize;
  l.total = l.consume_data + pages(consume_size) * kQueuePageSize;
  return l;
}

QueuePairView creator_view(uint8_t* base, uint64_t produce_size, uint64_t consume_size) {
  const QueuePairLayout l = queue_pair_layout(produce_size, consume_size);
  return {reinterpret_cast<vmci_queue_header*>(base + l.produce_header),
          base + l.produce_data,
          produce_size,
          reinterpret_cast<vmci_queue_header*>(base + l.consume_header),
          base + l.consume_data,
          consume_size};
}

QueuePairView attacher_view(uint8_t* base, uint64_t produce_size, uint64_t consume_size) {
  const QueuePairView c = creator_view(base, produce_size, consume_size);
  return {c.consume_header, c.consume_data, c.consume_size,
          c.produce_header, c.produce_data, c.produce_size};
}

int64_t produce_free_space(const QueuePairView& qp) {
  return free_space(load_own(qp.produce_header->producer_tail),
                    load_acquire(qp.consume_header->consumer_head), qp.produce_size);
}

int64_t produce_buf_ready(const QueuePairView& qp) {
  return buf_ready(load_own(qp.produce_header->producer_tail),
                   load_acquire(qp.consume_header->consumer_head), qp.produce_size);
}

int64_t consume_free_space(const QueuePairView& qp) {
  return free_space(load_acquire(qp.consume_header->producer_tail),
                    load_own(qp.produce_header->consumer_head), qp.consume_size);
}

int64_t consume_buf_ready(const QueuePairView& qp) {
  return buf_ready(load_acquire(qp.consume_header->producer_tail),
                   load_own(qp.produce_header->consumer_head), qp.consume_size);
}

QueueIndexes produce_indexes(const QueuePairView& qp) {
  return {load_own(qp.produce_header->producer_tail),
          load_acquire(qp.consume_header->consumer_head)};
}

QueueIndexes consume_indexes(const QueuePairView& qp) {
  return {load_acquire(qp.consume_header->producer_tail),
          load_own(qp.produce_header->consumer_head)};
}

int64_t enqueue(const QueuePairView& qp, const void* buf, size_t n, uint64_t* copy) {
  const uint64_t tail = load_own(qp.produce_header->producer_tail);
  const uint64_t head = peer_index(qp.consume_header->consumer_head, copy, [&](uint64_t h) {
    const int64_t free = free_space(tail, h, qp.produce_size);
    return free > 0 && static_cast<uint64_t>(free) >= n;
  });
  const int64_t free = free_space(tail, head, qp.produce_size);
  if (free < 0) return free;
  if (free == 0) return VMCI_ERROR_QUEUEPAIR_NOSPACE;
  const uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(free), n);
  const RingSpan span = ring_span(tail, count, qp.produce_size);
  const auto* in = static_cast<const uint8_t*>(buf);
  if (span.first) std::memcpy(qp.produce_data + tail, in, span.first);
  if (span.second) std::memcpy(qp.produce_data, in + span.first, span.second);
  // The data is written before the tail that publishes it.
  store_release(qp.produce_header->producer_tail, advance(tail, count, qp.produce_size));
  return static_cast<int64_t>(count);
}

int64_t dequeue(const QueuePairView& qp, void* buf, size_t n, uint64_t* copy) {
  return copy_out(qp, buf, n, true, copy);
}

int64_t peek(const QueuePairView& qp, void* buf, size_t n, uint64_t* copy) {
  return copy_out(qp, buf, n, false, copy);
}

}  // namespace vmci::proto
