#include "stream_pump.h"

#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "byte_stream.h"
#include "vmci/proto/names.h"

namespace vmci::soak {
namespace {

// How long a pump sleeps when its queue is full or empty: short enough to
// keep the stream moving, long enough not to starve a 2-core machine.
constexpr auto kIdle = std::chrono::microseconds(300);

}  // namespace

PumpOutcome pump_out(QueuePair& qp, uint64_t seed, uint64_t chunk_seed, PumpControl& control) {
  PumpOutcome out;
  testing::ByteStream stream(seed);
  std::mt19937_64 chunks(chunk_seed);
  std::vector<uint8_t> buf(kMaxPumpChunk);
  size_t start = 0, pending = 0;  // buf[start, start + pending) is not yet enqueued
  while (!control.stop.load(std::memory_order_relaxed)) {
    if (control.abandon.load(std::memory_order_relaxed)) {
      out.abandoned = true;
      break;
    }
    if (pending == 0) {
      start = 0;
      pending = 1 + static_cast<size_t>(chunks() % kMaxPumpChunk);
      stream.fill(buf.data(), pending);
    }
    const int64_t n = qp.enqueue(buf.data() + start, pending);
    if (n > 0) {
      if (static_cast<uint64_t>(n) > pending) {
        out.error = "enqueue of " + std::to_string(pending) + " returned " + std::to_string(n);
        break;
      }
      start += static_cast<size_t>(n);
      pending -= static_cast<size_t>(n);
      out.bytes += static_cast<uint64_t>(n);
      control.progress.store(out.bytes, std::memory_order_relaxed);
    } else if (n == VMCI_ERROR_QUEUEPAIR_NOSPACE || n == 0) {
      std::this_thread::sleep_for(kIdle);
    } else if (n == VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
      out.peer_gone = true;
      break;
    } else {
      out.error = "enqueue after " + std::to_string(out.bytes) + " bytes: " +
                  proto::describe_result(n);
      break;
    }
  }
  return out;
}

PumpOutcome pump_in(QueuePair& qp, uint64_t seed, uint64_t chunk_seed, PumpControl& control,
                    int stall_seconds) {
  PumpOutcome out;
  testing::ByteStream stream(seed);
  std::mt19937_64 chunks(chunk_seed);
  std::vector<uint8_t> buf(kMaxPumpChunk), expected(kMaxPumpChunk);
  auto last_progress = std::chrono::steady_clock::now();
  for (;;) {
    const uint64_t target = control.target.load(std::memory_order_acquire);
    if (out.bytes >= target) break;
    if (control.abandon.load(std::memory_order_relaxed)) {
      out.abandoned = true;
      break;
    }
    const auto want = static_cast<size_t>(
        std::min<uint64_t>(target - out.bytes, 1 + chunks() % kMaxPumpChunk));
    const int64_t n = qp.dequeue(buf.data(), want);
    if (n > 0) {
      const auto got = static_cast<size_t>(n);
      if (got > want) {
        out.error = "dequeue of " + std::to_string(want) + " returned " + std::to_string(n);
        break;
      }
      stream.fill(expected.data(), got);
      if (std::memcmp(buf.data(), expected.data(), got) != 0) {
        size_t i = 0;
        while (buf[i] == expected[i]) ++i;
        out.error = "stream byte " + std::to_string(out.bytes + i) + " is " +
                    std::to_string(buf[i]) + ", expected " + std::to_string(expected[i]);
        break;
      }
      out.bytes += got;
      control.progress.store(out.bytes, std::memory_order_relaxed);
      last_progress = std::chrono::steady_clock::now();
    } else if (n == VMCI_ERROR_QUEUEPAIR_NODATA || n == 0) {
      if (target != UINT64_MAX &&
          std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(stall_seconds)) {
        out.error = "stalled: read " + std::to_string(out.bytes) + " of " +
                    std::to_string(target) + " bytes, nothing more for " +
                    std::to_string(stall_seconds) + " s";
        break;
      }
      std::this_thread::sleep_for(kIdle);
    } else if (n == VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
      out.peer_gone = true;
      break;
    } else {
      out.error = "dequeue after " + std::to_string(out.bytes) + " bytes: " +
                  proto::describe_result(n);
      break;
    }
  }
  return out;
}

}  // namespace vmci::soak
