// queue.h: moving bytes through a queue pair's mapped memory (spec §6.3,
// §6.7), shared by every kind of endpoint. No I/O, no locks: each endpoint
// writes only its own produce-queue header; indices are published with
// release stores after the data, and the peer's are read with acquire loads.
//
// Contract: one producer thread and one consumer thread may use one
// endpoint's view at a time.
//
//   QueuePairView mine{...};            // my produce queue, my consume queue
//   int64_t n = enqueue(mine, "hi", 2); // 2, a short count, or a VMCI_ERROR_*
//   n = dequeue(peer, buf, sizeof buf);
#pragma once

#include <cstddef>
#include <cstdint>

#include "vmci/vmci_defs.h"

namespace vmci::proto {

// One endpoint's view of a pair. Its produce queue is the peer's consume
// queue and the other way round; my read position in my consume queue lives
// in my produce queue's header (consumer_head).
struct QueuePairView {
  vmci_queue_header* produce_header;  // written by me
  uint8_t* produce_data;
  uint64_t produce_size;
  vmci_queue_header* consume_header;  // written by the peer
  uint8_t* consume_data;
  uint64_t consume_size;
};

// The header a queue starts with (the hypervisor writes it at create time).
void init_queue_header(vmci_queue_header* header, vmci_handle handle);

// Where a pair's queues lie in its memory (spec §6.3, §12): the creator's
// produce queue (a header page, then ceil(P / 4096) data pages), then its
// consume queue likewise. Offsets in bytes from the start of the memory.
struct QueuePairLayout {
  uint64_t produce_header;
  uint64_t produce_data;
  uint64_t consume_header;
  uint64_t consume_data;
  uint64_t total;
};
inline constexpr uint64_t kQueuePageSize = 4096;
// `produce_size` and `consume_size` from the creator's point of view.
QueuePairLayout queue_pair_layout(uint64_t produce_size, uint64_t consume_size);
// The creator's and the attacher's views of memory laid out so.
QueuePairView creator_view(uint8_t* base, uint64_t produce_size, uint64_t consume_size);
QueuePairView attacher_view(uint8_t* base, uint64_t produce_size, uint64_t consume_size);

// The page hostpeer gives a host endpoint with each of its pairs. Only
// hostpeer writes it: peer_attached is 1 while the guest endpoint's memory
// is there (the broker's *_MEM states), else 0 (spec §6.8: a host endpoint
// then gets VMCI_ERROR_QUEUEPAIR_NOTATTACHED).
//
// memory_generation counts the times hostpeer replaced the pair's memory
// after it gave the host endpoint this page: once, when a guest that
// supplies its own pages attaches to a pair the host created (its
// kQueuePairMemory frame is then on its way). A host endpoint treats its
// guest as attached only once it has mapped that memory too (QueuePair's
// mapped generation).
struct QueuePairStatus {
  uint32_t peer_attached;
  uint32_t memory_generation;
};
inline constexpr uint64_t kQueuePairStatusSize = kQueuePageSize;

// The four queries of the kernel API (spec §6.7): a count, or
// VMCI_ERROR_INVALID_SIZE when an index is out of range (a size-0 queue).
int64_t produce_free_space(const QueuePairView& qp);
int64_t produce_buf_ready(const QueuePairView& qp);
int64_t consume_free_space(const QueuePairView& qp);
int64_t consume_buf_ready(const QueuePairView& qp);

// The indexes of the kernel API's get_*_indexes: (producer tail, consumer
// head) of my produce queue, and of my consume queue.
struct QueueIndexes {
  uint64_t tail;
  uint64_t head;
};
QueueIndexes produce_indexes(const QueuePairView& qp);
QueueIndexes consume_indexes(const QueuePairView& qp);

// Copies up to n bytes in: the count written (short when the queue fills),
// VMCI_ERROR_QUEUEPAIR_NOSPACE when it is full (even for n == 0), or
// VMCI_ERROR_INVALID_SIZE.
//
// `peer_index`, when given, is the caller's copy of the peer's index (the
// consumer head here, the producer tail for dequeue and peek), kept by the
// one producer (consumer) thread: while it shows room (data) for all n
// bytes, the shared index is not read, which saves a cache miss per call;
// otherwise it is read and the copy refreshed. The results are the same as
// without it: the peer only ever moves its index forward.
int64_t enqueue(const QueuePairView& qp, const void* buf, size_t n,
                uint64_t* peer_index = nullptr);
// Copies up to n bytes out and consumes them: the count read,
// VMCI_ERROR_QUEUEPAIR_NODATA when empty (even for n == 0), or
// VMCI_ERROR_INVALID_SIZE.
int64_t dequeue(const QueuePairView& qp, void* buf, size_t n, uint64_t* peer_index = nullptr);
// As dequeue, without consuming.
int64_t peek(const QueuePairView& qp, void* buf, size_t n, uint64_t* peer_index = nullptr);

}  // namespace vmci::proto
