// stream.h: the streaming ops qpair_write_all and qpair_read_all: whole
// data through a queue pair in chunks, polling with back-off (about 50 µs
// growing to 1 ms) while the queue is full or empty.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "data.h"
#include "vmci/queue_pair.h"

namespace vmci::scenario {

struct StreamLimits {
  uint64_t chunk = 4096;
  std::chrono::milliseconds no_progress{10000};  // fail when nothing moves this long
  std::chrono::steady_clock::time_point deadline;  // the scenario's
  const std::atomic<bool>* cancelled = nullptr;    // another branch failed
  // write_all: called after each enqueue that moved bytes (ringing the
  // peer's doorbell); a negative status ends the stream.
  std::function<int()> after_enqueue;
  // read_all: called instead of polling while the queue is empty; returns
  // once the doorbell was rung (true) or at the time given (false).
  std::function<bool(std::chrono::steady_clock::time_point)> wait_for_data;
};

struct StreamResult {
  bool ok = false;
  uint64_t bytes = 0;     // moved before it ended
  std::string message;    // why it failed
  uint64_t mismatch_at = 0;  // read_all: the first differing offset
  // The VMCI status of the enqueue or dequeue that cut the stream (one
  // other than NOSPACE / NODATA), or 0 when it ended otherwise.
  int64_t cut_by = 0;
};

// Enqueues all of `data`.
StreamResult write_all(QueuePair& qp, const Data& data, const StreamLimits& limits);
// Dequeues exactly `length` bytes and compares them with `expected`.
StreamResult read_all(QueuePair& qp, uint64_t length, const Data& expected,
                      const StreamLimits& limits);

}  // namespace vmci::scenario
