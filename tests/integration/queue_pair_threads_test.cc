// Queue pairs with every endpoint a thread of this process, so that
// ThreadSanitizer sees both sides of the ring (it cannot see across
// processes): a guest and an embedded host endpoint, and a local pair, each
// streaming both ways at once with random sizes and chunks.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "../peers/byte_stream.h"
#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace vmci::testing {
namespace {

// Moves `length` bytes of the stream for `seed` from `from` to `to`, on two
// threads, in random chunks; true if every byte arrived intact.
bool stream_one_way(QueuePair& from, QueuePair& to, uint64_t seed, uint64_t length,
                    std::string* error) {
  std::thread writer([&] {
    std::mt19937_64 rng(seed + 1);
    ByteStream stream(seed);
    std::vector<uint8_t> buf(70000);
    uint64_t done = 0, pending = 0;
    while (done < length) {
      if (pending == 0) {
        pending = std::min<uint64_t>(length - done, 1 + rng() % buf.size());
        stream.fill(buf.data(), pending);
      }
      const int64_t n = from.enqueue(buf.data(), pending);
      if (n < 0) {
        if (n != VMCI_ERROR_QUEUEPAIR_NOSPACE) return;
        std::this_thread::yield();
        continue;
      }
      std::memmove(buf.data(), buf.data() + n, pending - static_cast<uint64_t>(n));
      pending -= static_cast<uint64_t>(n);
      done += static_cast<uint64_t>(n);
    }
  });
  std::mt19937_64 rng(seed + 2);
  ByteStream stream(seed);
  std::vector<uint8_t> buf(70000), expected(buf.size());
  uint64_t done = 0;
  bool ok = true;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (done < length && std::chrono::steady_clock::now() < limit) {
    const int64_t n = to.dequeue(buf.data(), std::min<uint64_t>(length - done, 1 + rng() % buf.size()));
    if (n == VMCI_ERROR_QUEUEPAIR_NODATA) {
      std::this_thread::yield();
      continue;
    }
    if (n < 0) {
      *error = "dequeue: " + proto::describe_result(n);
      ok = false;
      break;
    }
    stream.fill(expected.data(), static_cast<size_t>(n));
    if (std::memcmp(buf.data(), expected.data(), static_cast<size_t>(n)) != 0) {
      *error = "data differs within bytes " + std::to_string(done) + ".." + std::to_string(done + n);
      ok = false;
      break;
    }
    done += static_cast<uint64_t>(n);
  }
  writer.join();
  if (ok && done != length) *error = "only " + std::to_string(done) + " bytes arrived in time";
  return ok && done == length;
}

// Both directions at once: one producer and one consumer thread per endpoint.
void stream_both_ways(QueuePair& a, QueuePair& b, uint64_t seed, uint64_t length) {
  std::string error_ab, error_ba;
  bool ok_ab = false;
  std::thread ab([&] { ok_ab = stream_one_way(a, b, seed, length, &error_ab); });
  const bool ok_ba = stream_one_way(b, a, seed ^ 0xba, length, &error_ba);
  ab.join();
  EXPECT_TRUE(ok_ab) << error_ab;
  EXPECT_TRUE(ok_ba) << error_ba;
}

TEST(QueuePairThreads, GuestAndEmbeddedHostStreamBothWays) {
  TempDir dir;
  host::Options options;
  options.socket_path = dir.path() + "/hostpeer.sock";
  std::string error;
  auto hostpeer = host::HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer) << error;
  auto host = hostpeer->connect_host();
  int status;
  auto guest = guest::Driver::connect({.socket_path = options.socket_path}, &status, &error);
  ASSERT_TRUE(guest) << error;

  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 3; ++round) {
    const uint64_t produce = 1 + rng() % 100000, consume = 1 + rng() % 100000;
    std::unique_ptr<QueuePair> g, h;
    vmci_handle handle = VMCI_INVALID_HANDLE;
    ASSERT_EQ(guest->qpair_alloc(&g, &handle, produce, consume, VMCI_INVALID_ID, 0, 0),
              VMCI_SUCCESS);
    ASSERT_EQ(host->qpair_alloc(&h, &handle, consume, produce, VMCI_INVALID_ID, 0, 0),
              VMCI_SUCCESS);
    stream_both_ways(*g, *h, rng(), 2 * 1024 * 1024);
    EXPECT_EQ(guest->qpair_detach(&g), VMCI_SUCCESS);
    EXPECT_EQ(host->qpair_detach(&h), VMCI_SUCCESS);
  }
  EXPECT_EQ(hostpeer->stats().queue_pairs, 0u);
}

TEST(QueuePairThreads, LocalPairStreamsBothWays) {
  TempDir dir;
  host::Options options;
  options.socket_path = dir.path() + "/hostpeer.sock";
  std::string error;
  auto hostpeer = host::HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer) << error;
  int status;
  auto guest = guest::Driver::connect({.socket_path = options.socket_path}, &status, &error);
  ASSERT_TRUE(guest) << error;
  std::unique_ptr<QueuePair> a, b;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(guest->qpair_alloc(&a, &handle, 5000, 70000, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0),
            VMCI_SUCCESS);
  ASSERT_EQ(guest->qpair_alloc(&b, &handle, 70000, 5000, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0),
            VMCI_SUCCESS);
  stream_both_ways(*a, *b, 42, 2 * 1024 * 1024);
  EXPECT_EQ(hostpeer->stats().queue_pairs, 0u) << "a local pair never reaches hostpeer";
  EXPECT_EQ(guest->qpair_detach(&a), VMCI_SUCCESS);
  EXPECT_EQ(guest->qpair_detach(&b), VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci::testing
