// Guests that supply queue-pair memory as their own pages, as a real guest
// kernel behind the PCI device does (frame.h's kFeatureGuestMemory): a raw
// guest connection whose "RAM" is a memfd of this process, its alloc
// hypercalls carrying 64-bit guest page numbers, against host endpoints
// embedded in hostpeer and connected to the daemon. The queues are read and
// written in the RAM file as a guest kernel would, per the VMCI layout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <sys/stat.h>
#include <thread>

#include "connection.h"
#include "processes.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/queue.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/queue_pair.h"

namespace vmci::testing {
namespace {

using guest::internal::Connection;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kPage = 4096;

// A guest connection whose RAM is a sealed memfd (QEMU's memory-backend-memfd).
class GuestWithRam {
 public:
  GuestWithRam(const std::string& socket, uint8_t features, uint64_t ram_size = 16 * kMiB) {
    ram_ = ::memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    EXPECT_EQ(::ftruncate(ram_, static_cast<off_t>(ram_size)), 0);
    EXPECT_EQ(::fcntl(ram_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    guest::ConnectOptions options;
    options.socket_path = socket;
    options.role = proto::Role::kGuest;
    Connection::Sink sink;
    sink.deliver = [](uint32_t, std::vector<uint8_t>) {};
    sink.closed = [](const std::string&) {};
    int status;
    std::string error;
    connection_ = Connection::open(options, std::move(sink), &status, &error, features);
    EXPECT_TRUE(connection_) << error;
  }
  ~GuestWithRam() { ::close(ram_); }

  int64_t send_map(std::span<const proto::GuestMemoryRegion> regions, std::vector<int> fds) {
    return connection_
        ->request(proto::FrameType::kGuestMemory,
                  proto::encode_guest_memory(proto::kGuestMemoryPpn64, regions), {}, fds)
        .result;
  }
  // One region: all of RAM at gpa 0.
  int64_t send_whole_ram() {
    const proto::GuestMemoryRegion region{0, ram_size(), 0, 0, 0};
    return send_map(std::span(&region, 1), {ram_});
  }
  uint64_t ram_size() const {
    struct stat st{};
    ::fstat(ram_, &st);
    return static_cast<uint64_t>(st.st_size);
  }
  Connection::Reply alloc(vmci_handle handle, uint64_t produce, uint64_t consume,
                          std::span<const uint64_t> ppns) {
    return connection_->request(
        proto::FrameType::kDatagram,
        proto::make_qp_alloc_message(handle, VMCI_INVALID_ID, 0, produce, consume, ppns, 8));
  }
  int64_t detach(vmci_handle handle) {
    return connection_->request(proto::FrameType::kDatagram, proto::make_qp_detach_message(handle))
        .result;
  }
  vmci_id cid() const { return connection_->context_id(); }
  int ram() const { return ram_; }
  void disconnect() { connection_.reset(); }

 private:
  int ram_ = -1;
  std::unique_ptr<Connection> connection_;
};

// The guest's side of a pair in its RAM: page i of the pair (guest view:
// produce header, produce data, consume header, consume data) is at file
// offset file_of(i).
struct GuestPair {
  int ram;
  std::function<uint64_t(uint64_t)> file_of;
  uint64_t produce_size;
  uint64_t consume_size;

  uint64_t byte(uint64_t pair_offset) const {
    return file_of(pair_offset / kPage) + pair_offset % kPage;
  }
  proto::QueuePairLayout layout() const {
    return proto::queue_pair_layout(produce_size, consume_size);
  }
  // vmci_q_header_init, as a guest kernel's pages would hold it.
  void init_headers(vmci_handle handle) const {
    const vmci_queue_header h{handle, 0, 0};
    ASSERT_EQ(::pwrite(ram, &h, sizeof h, byte(layout().produce_header)), ssize_t(sizeof h));
    ASSERT_EQ(::pwrite(ram, &h, sizeof h, byte(layout().consume_header)), ssize_t(sizeof h));
  }
  uint64_t u64(uint64_t pair_offset) const {
    uint64_t v = 0;
    EXPECT_EQ(::pread(ram, &v, sizeof v, byte(pair_offset)), ssize_t(sizeof v));
    return v;
  }
  void set_u64(uint64_t pair_offset, uint64_t v) const {
    EXPECT_EQ(::pwrite(ram, &v, sizeof v, byte(pair_offset)), ssize_t(sizeof v));
  }
  // The guest writes into its produce queue (from tail 0) and publishes.
  void produce(const std::string& bytes) const {
    for (size_t i = 0; i < bytes.size(); ++i) {
      ASSERT_EQ(::pwrite(ram, &bytes[i], 1, byte(layout().produce_data + i)), 1);
    }
    set_u64(layout().produce_header + 8, bytes.size());  // producer_tail
  }
  // What the host produced into the guest's consume queue (from head 0).
  std::string consume() const {
    const uint64_t tail = u64(layout().consume_header + 8);
    std::string out(tail, '\0');
    for (uint64_t i = 0; i < tail; ++i) {
      EXPECT_EQ(::pread(ram, &out[i], 1, byte(layout().consume_data + i)), 1);
    }
    set_u64(layout().produce_header + 16, tail);  // my consumer_head
    return out;
  }
};

// Pages [first, first + count) of guest-physical memory, as page numbers.
std::vector<uint64_t> pages(uint64_t first, uint64_t count) {
  std::vector<uint64_t> out(count);
  for (uint64_t i = 0; i < count; ++i) out[i] = first + i;
  return out;
}

// Moves data both ways between `host` and the guest's pages, then detaches.
void exchange(Endpoint& host, GuestWithRam& guest, const GuestPair& pair, vmci_handle handle) {
  std::unique_ptr<QueuePair> qp;
  vmci_handle h = handle;
  ASSERT_EQ(host.qpair_alloc(&qp, &h, pair.consume_size, pair.produce_size, VMCI_INVALID_ID, 0, 0),
            VMCI_SUCCESS);
  ASSERT_EQ(qp->enqueue("to the guest", 12), 12);
  EXPECT_EQ(pair.consume(), "to the guest");
  pair.produce("to the host");
  char buf[32] = {};
  ASSERT_EQ(qp->dequeue(buf, sizeof buf), 11);
  EXPECT_EQ(std::string(buf, 11), "to the host");
  EXPECT_EQ(guest.detach(handle), VMCI_SUCCESS);
  EXPECT_EQ(qp->enqueue("x", 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(host.qpair_detach(&qp), VMCI_SUCCESS);
}

bool holds_nothing(host::HostPeer& hostpeer) {
  for (int i = 0; i < 500; ++i) {
    const host::Stats s = hostpeer.stats();
    if (s.queue_pairs == 0 && s.queue_pair_bytes == 0 && s.guest_contexts == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

constexpr uint8_t kRealGuest = proto::kFeatureGuestMemory | proto::kFeatureNoRingChannels;

TEST(GuestMemory, GuestCreatedPairInOneRegion_EmbeddedHostMovesDataBothWays) {
  EmbeddedHostpeer hostpeer;
  {
    GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
    ASSERT_EQ(guest.send_whole_ram(), VMCI_SUCCESS);
    const vmci_handle handle = VMCI_MAKE_HANDLE(guest.cid(), 4096);
    const GuestPair pair{guest.ram(), [](uint64_t i) { return (256 + i) * kPage; }, 8192, 16384};
    pair.init_headers(handle);
    const auto reply = guest.alloc(handle, 8192, 16384, pages(256, 2 + 2 + 4));
    ASSERT_EQ(reply.result, VMCI_SUCCESS);
    EXPECT_TRUE(reply.fds.empty());  // the guest's memory is its own
    auto host = hostpeer->connect_host();
    exchange(*host, guest, pair, handle);
  }
  EXPECT_TRUE(holds_nothing(*hostpeer.operator->()));
}

TEST(GuestMemory, PairStraddlingTwoRegions_DaemonHostMovesDataBothWays) {
  Daemon daemon;
  GuestWithRam guest(daemon.socket_path(), kRealGuest);
  // gpa [0, 8 MiB) is the file's second half, gpa [8 MiB, 16 MiB) its first.
  const proto::GuestMemoryRegion regions[] = {{0, 8 * kMiB, 8 * kMiB, 0, 0},
                                              {8 * kMiB, 8 * kMiB, 0, 0, 0}};
  ASSERT_EQ(guest.send_map(regions, {guest.ram()}), VMCI_SUCCESS);
  const uint64_t first = 8 * kMiB / kPage - 3;  // three pages below the boundary
  auto file_of = [first](uint64_t i) {
    const uint64_t gpa = (first + i) * kPage;
    return gpa < 8 * kMiB ? gpa + 8 * kMiB : gpa - 8 * kMiB;
  };
  const vmci_handle handle = VMCI_MAKE_HANDLE(guest.cid(), 4097);
  const GuestPair pair{guest.ram(), file_of, 4096, 8192};
  pair.init_headers(handle);
  ASSERT_EQ(guest.alloc(handle, 4096, 8192, pages(first, 2 + 1 + 2)).result, VMCI_SUCCESS);
  auto host = connect(daemon.socket_path(), proto::Role::kHost);
  ASSERT_TRUE(host);
  exchange(*host, guest, pair, handle);
}

TEST(GuestMemory, HostCreatedPair_GuestAttachesWithItsPages_EmbeddedAndDaemon) {
  EmbeddedHostpeer hostpeer;
  auto embedded = hostpeer->connect_host();
  auto daemon_host = connect(hostpeer.socket_path(), proto::Role::kHost);
  ASSERT_TRUE(daemon_host);
  GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
  ASSERT_EQ(guest.send_whole_ram(), VMCI_SUCCESS);
  uint64_t next_page = 512;
  for (Endpoint* host : {static_cast<Endpoint*>(embedded.get()),
                         static_cast<Endpoint*>(daemon_host.get())}) {
    std::unique_ptr<QueuePair> qp;
    vmci_handle handle = VMCI_INVALID_HANDLE;
    // Host view: produce 4096, consume 8192; the guest's view is swapped.
    ASSERT_EQ(host->qpair_alloc(&qp, &handle, 4096, 8192, guest.cid(), 0, 0), VMCI_SUCCESS);
    EXPECT_EQ(qp->enqueue("x", 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
    const GuestPair pair{guest.ram(), [next_page](uint64_t i) { return (next_page + i) * kPage; },
                         8192, 4096};
    ASSERT_EQ(guest.alloc(handle, 8192, 4096, pages(next_page, 2 + 2 + 1)).result, VMCI_SUCCESS);
    next_page += 16;
    // The host endpoint maps the guest's pages when their frame arrives.
    int64_t sent = VMCI_ERROR_QUEUEPAIR_NOTATTACHED;
    for (int i = 0; i < 500 && sent == VMCI_ERROR_QUEUEPAIR_NOTATTACHED; ++i) {
      sent = qp->enqueue("to the guest", 12);
      if (sent == VMCI_ERROR_QUEUEPAIR_NOTATTACHED) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    ASSERT_EQ(sent, 12);
    vmci_handle in_header{};
    ASSERT_EQ(::pread(guest.ram(), &in_header, sizeof in_header,
                      pair.byte(pair.layout().consume_header)),
              ssize_t(sizeof in_header));
    EXPECT_TRUE(in_header.context == handle.context && in_header.resource == handle.resource)
        << "hostpeer initialises the headers in the guest's pages";
    EXPECT_EQ(pair.consume(), "to the guest");
    pair.produce("to the host");
    char buf[32] = {};
    ASSERT_EQ(qp->dequeue(buf, sizeof buf), 11);
    EXPECT_EQ(std::string(buf, 11), "to the host");
    EXPECT_EQ(guest.detach(handle), VMCI_SUCCESS);
    EXPECT_EQ(host->qpair_detach(&qp), VMCI_SUCCESS);
  }
}

TEST(GuestMemory, AGuestThatGoesLeavesNothingBehind) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  std::unique_ptr<QueuePair> qp;
  {
    GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
    ASSERT_EQ(guest.send_whole_ram(), VMCI_SUCCESS);
    const vmci_handle handle = VMCI_MAKE_HANDLE(guest.cid(), 4096);
    ASSERT_EQ(guest.alloc(handle, 4096, 4096, pages(100, 4)).result, VMCI_SUCCESS);
    vmci_handle h = handle;
    ASSERT_EQ(host->qpair_alloc(&qp, &h, 4096, 4096, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
    guest.disconnect();
  }
  for (int i = 0; i < 500 && qp->enqueue("x", 1) != VMCI_ERROR_QUEUEPAIR_NOTATTACHED; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(qp->enqueue("x", 1), VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  EXPECT_EQ(host->qpair_detach(&qp), VMCI_SUCCESS);
  EXPECT_TRUE(holds_nothing(*hostpeer.operator->()));
}

TEST(GuestMemory, APageOutsideRamIsInvalidArgs) {
  EmbeddedHostpeer hostpeer;
  GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
  ASSERT_EQ(guest.send_whole_ram(), VMCI_SUCCESS);
  const vmci_handle handle = VMCI_MAKE_HANDLE(guest.cid(), 4096);
  EXPECT_EQ(guest.alloc(handle, 4096, 4096, pages(16 * kMiB / kPage - 2, 4)).result,
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(hostpeer->stats().queue_pairs, 0u);
}

TEST(GuestMemory, AnAllocBeforeAnyMapIsInvalidArgs) {
  EmbeddedHostpeer hostpeer;
  GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
  EXPECT_EQ(guest.alloc(VMCI_MAKE_HANDLE(guest.cid(), 4096), 4096, 4096, pages(0, 4)).result,
            VMCI_ERROR_INVALID_ARGS);
}

TEST(GuestMemory, OverlappingRegionsAreInvalidArgs) {
  EmbeddedHostpeer hostpeer;
  GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
  const proto::GuestMemoryRegion regions[] = {{0, 8 * kMiB, 0, 0, 0}, {4 * kMiB, kMiB, 0, 0, 0}};
  EXPECT_EQ(guest.send_map(regions, {guest.ram()}), VMCI_ERROR_INVALID_ARGS);
}

TEST(GuestMemory, TooFewDescriptorsIsInvalidArgs) {
  EmbeddedHostpeer hostpeer;
  GuestWithRam guest(hostpeer.socket_path(), kRealGuest);
  const proto::GuestMemoryRegion regions[] = {{0, kMiB, 0, 0, 0}, {kMiB, kMiB, 0, 1, 0}};
  EXPECT_EQ(guest.send_map(regions, {guest.ram()}), VMCI_ERROR_INVALID_ARGS);
}

TEST(GuestMemory, AGuestWithoutTheFeatureIsRefusedItsMap) {
  EmbeddedHostpeer hostpeer;
  GuestWithRam guest(hostpeer.socket_path(), 0);
  EXPECT_EQ(guest.send_whole_ram(), VMCI_ERROR_NO_ACCESS);
}

TEST(GuestMemory, AHostIsRefusedAMapAndTheFeature) {
  EmbeddedHostpeer hostpeer;
  guest::ConnectOptions options;
  options.socket_path = hostpeer.socket_path();
  options.role = proto::Role::kHost;
  int status;
  std::string error;
  Connection::Sink sink;
  sink.deliver = [](uint32_t, std::vector<uint8_t>) {};
  sink.closed = [](const std::string&) {};
  EXPECT_FALSE(Connection::open(options, sink, &status, &error, proto::kFeatureGuestMemory));
  EXPECT_NE(error.find("for guests"), std::string::npos) << error;
  auto host = Connection::open(options, sink, &status, &error);
  ASSERT_TRUE(host) << error;
  const proto::GuestMemoryRegion region{0, 4096, 0, 0, 0};
  EXPECT_EQ(host->request(proto::FrameType::kGuestMemory,
                          proto::encode_guest_memory(0, std::span(&region, 1)))
                .result,
            VMCI_ERROR_NO_ACCESS);
}

}  // namespace
}  // namespace vmci::testing
