#include "stream_check.h"

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "byte_stream.h"
#include "vmci/proto/names.h"

namespace vmci::testing {

StreamOutcome write_stream(QueuePair& qp, uint64_t seed, uint64_t length, uint64_t chunk_seed,
                           std::chrono::seconds limit, size_t max_chunk) {
  StreamOutcome out;
  ByteStream stream(seed);
  std::mt19937_64 chunks(chunk_seed);
  std::vector<uint8_t> buf(max_chunk);
  uint64_t pending = 0;  // bytes at the start of buf not yet enqueued
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.bytes < length) {
    if (pending == 0) {
      pending = std::min<uint64_t>(length - out.bytes, 1 + chunks() % max_chunk);
      stream.fill(buf.data(), static_cast<size_t>(pending));
    }
    const int64_t n = qp.enqueue(buf.data(), pending);
    if (n > 0) {
      std::memmove(buf.data(), buf.data() + n, pending - static_cast<uint64_t>(n));
      pending -= static_cast<uint64_t>(n);
      out.bytes += static_cast<uint64_t>(n);
    } else if (n != VMCI_ERROR_QUEUEPAIR_NOSPACE) {
      out.error = "enqueue after " + std::to_string(out.bytes) + " bytes: " +
                  proto::describe_result(n);
      return out;
    } else if (std::chrono::steady_clock::now() > deadline) {
      out.error = "still full after " + std::to_string(limit.count()) + " s";
      return out;
    } else {
      std::this_thread::yield();
    }
  }
  return out;
}

StreamOutcome read_stream(QueuePair& qp, uint64_t seed, uint64_t length, uint64_t chunk_seed,
                          std::chrono::seconds limit, size_t max_chunk) {
  StreamOutcome out;
  ByteStream stream(seed);
  std::mt19937_64 chunks(chunk_seed);
  std::vector<uint8_t> buf(max_chunk), expected(max_chunk);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.bytes < length) {
    const auto want =
        static_cast<size_t>(std::min<uint64_t>(length - out.bytes, 1 + chunks() % max_chunk));
    const int64_t n = qp.dequeue(buf.data(), want);
    if (n > 0) {
      const auto got = static_cast<size_t>(n);
      stream.fill(expected.data(), got);
      for (size_t i = 0; i < got; ++i) {
        if (buf[i] != expected[i]) {
          out.error = "byte " + std::to_string(out.bytes + i) + " differs";
          return out;
        }
      }
      out.bytes += got;
    } else if (n != VMCI_ERROR_QUEUEPAIR_NODATA) {
      out.error = "dequeue after " + std::to_string(out.bytes) + " bytes: " +
                  proto::describe_result(n);
      return out;
    } else if (std::chrono::steady_clock::now() > deadline) {
      out.error = "still empty after " + std::to_string(limit.count()) + " s";
      return out;
    } else {
      std::this_thread::yield();
    }
  }
  return out;
}

}  // namespace vmci::testing
