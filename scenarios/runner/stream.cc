#include "stream.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "vmci/proto/names.h"

namespace vmci::scenario {
namespace {

using Clock = std::chrono::steady_clock;

// Waits between polls: 50 µs, doubling up to 1 ms; reset on progress.
class Backoff {
 public:
  void progress() { delay_ = kFirst; }
  void wait() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, kLast);
  }

 private:
  static constexpr std::chrono::microseconds kFirst{50};
  static constexpr std::chrono::microseconds kLast{1000};
  std::chrono::microseconds delay_ = kFirst;
};

// Why the stream must stop now, or empty to go on.
std::string stop_reason(const StreamLimits& limits, Clock::time_point last_progress) {
  const auto now = Clock::now();
  if (limits.cancelled != nullptr && limits.cancelled->load()) return "cancelled";
  if (now >= limits.deadline) return "the scenario's time ran out";
  if (now - last_progress >= limits.no_progress) {
    return "no progress for " + std::to_string(limits.no_progress.count()) + " ms";
  }
  return {};
}

}  // namespace

StreamResult write_all(QueuePair& qp, const Data& data, const StreamLimits& limits) {
  StreamResult r;
  std::vector<uint8_t> chunk(std::max<uint64_t>(limits.chunk, 1));
  Backoff backoff;
  auto last_progress = Clock::now();
  uint64_t staged = 0;  // bytes of `chunk` that hold data from r.bytes on
  while (r.bytes < data.size()) {
    if (staged == 0) {
      staged = std::min<uint64_t>(chunk.size(), data.size() - r.bytes);
      data.copy(r.bytes, chunk.data(), staged);
    }
    const int64_t n = qp.enqueue(chunk.data(), staged);
    if (n > 0) {
      r.bytes += static_cast<uint64_t>(n);
      // A short write leaves the rest of the chunk for the next call.
      std::copy(chunk.begin() + n, chunk.begin() + static_cast<int64_t>(staged), chunk.begin());
      staged -= static_cast<uint64_t>(n);
      last_progress = Clock::now();
      backoff.progress();
      if (limits.after_enqueue) {
        if (const int rung = limits.after_enqueue(); rung < VMCI_SUCCESS) {
          r.message = "notify after " + std::to_string(r.bytes) + " bytes returned " +
                      proto::describe_result(rung);
          return r;
        }
      }
      continue;
    }
    if (n != VMCI_ERROR_QUEUEPAIR_NOSPACE && n != 0) {
      r.cut_by = n;
      r.message = "enqueue returned " + proto::describe_result(n) + " after " +
                  std::to_string(r.bytes) + " bytes";
      return r;
    }
    if (std::string why = stop_reason(limits, last_progress); !why.empty()) {
      r.message = why + " after " + std::to_string(r.bytes) + " of " +
                  std::to_string(data.size()) + " bytes were enqueued";
      return r;
    }
    backoff.wait();
  }
  r.ok = true;
  return r;
}

StreamResult read_all(QueuePair& qp, uint64_t length, const Data& expected,
                      const StreamLimits& limits) {
  StreamResult r;
  std::vector<uint8_t> chunk(std::max<uint64_t>(limits.chunk, 1));
  Backoff backoff;
  auto last_progress = Clock::now();
  while (r.bytes < length) {
    const uint64_t want = std::min<uint64_t>(chunk.size(), length - r.bytes);
    const int64_t n = qp.dequeue(chunk.data(), want);
    if (n > 0) {
      const auto got = static_cast<uint64_t>(n);
      if (auto m = compare(expected, std::span(chunk.data(), got), r.bytes, false)) {
        r.mismatch_at = m->offset;
        r.message = m->message;
        return r;
      }
      r.bytes += got;
      last_progress = Clock::now();
      backoff.progress();
      continue;
    }
    if (n != VMCI_ERROR_QUEUEPAIR_NODATA && n != 0) {
      r.cut_by = n;
      r.message = "dequeue returned " + proto::describe_result(n) + " after " +
                  std::to_string(r.bytes) + " bytes";
      return r;
    }
    if (std::string why = stop_reason(limits, last_progress); !why.empty()) {
      r.message = why + " after " + std::to_string(r.bytes) + " of " + std::to_string(length) +
                  " bytes were dequeued";
      return r;
    }
    if (limits.wait_for_data) {
      limits.wait_for_data(std::min(last_progress + limits.no_progress, limits.deadline));
    } else {
      backoff.wait();
    }
  }
  if (expected.size() != length) {
    r.mismatch_at = std::min(expected.size(), length);
    r.message = "expected " + std::to_string(expected.size()) + " bytes, length is " +
                std::to_string(length);
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace vmci::scenario
