// Queue pairs with every endpoint a thread of this process, so that
// ThreadSanitizer sees both sides of the ring (it cannot see across
// processes): a guest and an embedded host endpoint, and a local pair, each
// streaming both ways at once with random sizes and chunks.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "processes.h"
#include "stream_check.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace vmci::testing {
namespace {

// Both directions at once: one producer and one consumer thread per endpoint.
void stream_both_ways(QueuePair& a, QueuePair& b, uint64_t seed, uint64_t length) {
  constexpr std::chrono::seconds kLimit{120};
  StreamOutcome a_to_b, b_to_a, a_from_b, b_from_a;
  std::thread a_writer([&] { a_to_b = write_stream(a, seed, length, seed + 1, kLimit, 70000); });
  std::thread b_writer([&] { b_to_a = write_stream(b, ~seed, length, seed + 2, kLimit, 70000); });
  std::thread a_reader([&] { a_from_b = read_stream(a, ~seed, length, seed + 3, kLimit, 70000); });
  b_from_a = read_stream(b, seed, length, seed + 4, kLimit, 70000);
  a_writer.join();
  b_writer.join();
  a_reader.join();
  for (const StreamOutcome* o : {&a_to_b, &b_to_a, &a_from_b, &b_from_a}) {
    EXPECT_TRUE(o->ok()) << o->error;
    EXPECT_EQ(o->bytes, length);
  }
}

// hostpeer embedded here, and a guest connected to it over its socket.
class QueuePairThreads : public ::testing::Test {
 protected:
  void SetUp() override {
    host::Options options;
    options.socket_path = dir_.path() + "/hostpeer.sock";
    std::string error;
    hostpeer_ = host::HostPeer::start(options, &error);
    ASSERT_TRUE(hostpeer_) << error;
    int status;
    guest_ = guest::Driver::connect({.socket_path = options.socket_path}, &status, &error);
    ASSERT_TRUE(guest_) << error;
  }

  TempDir dir_;
  std::unique_ptr<host::HostPeer> hostpeer_;
  std::unique_ptr<guest::Driver> guest_;
};

TEST_F(QueuePairThreads, GuestAndEmbeddedHostStreamBothWays) {
  auto host = hostpeer_->connect_host();
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 3; ++round) {
    const uint64_t produce = 1 + rng() % 100000, consume = 1 + rng() % 100000;
    std::unique_ptr<QueuePair> g, h;
    vmci_handle handle = VMCI_INVALID_HANDLE;
    ASSERT_EQ(guest_->qpair_alloc(&g, &handle, produce, consume, VMCI_INVALID_ID, 0, 0),
              VMCI_SUCCESS);
    ASSERT_EQ(host->qpair_alloc(&h, &handle, consume, produce, VMCI_INVALID_ID, 0, 0),
              VMCI_SUCCESS);
    stream_both_ways(*g, *h, rng(), 2 * 1024 * 1024);
    EXPECT_EQ(guest_->qpair_detach(&g), VMCI_SUCCESS);
    EXPECT_EQ(host->qpair_detach(&h), VMCI_SUCCESS);
  }
  EXPECT_EQ(hostpeer_->stats().queue_pairs, 0u);
}

TEST_F(QueuePairThreads, LocalPairStreamsBothWays) {
  std::unique_ptr<QueuePair> a, b;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  ASSERT_EQ(guest_->qpair_alloc(&a, &handle, 5000, 70000, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0),
            VMCI_SUCCESS);
  ASSERT_EQ(guest_->qpair_alloc(&b, &handle, 70000, 5000, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0),
            VMCI_SUCCESS);
  stream_both_ways(*a, *b, 42, 2 * 1024 * 1024);
  EXPECT_EQ(hostpeer_->stats().queue_pairs, 0u) << "a local pair never reaches hostpeer";
  EXPECT_EQ(guest_->qpair_detach(&a), VMCI_SUCCESS);
  EXPECT_EQ(guest_->qpair_detach(&b), VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci::testing
