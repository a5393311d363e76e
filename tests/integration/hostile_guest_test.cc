// Guests that never read their socket, against the real daemon: what
// hostpeer holds for them stays bounded, they are cut off, and a newcomer
// connects and allocates while they go on.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>
#include <vector>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/queue_pair_hypercalls.h"
#include "vmci/queue_pair.h"

namespace vmci::testing {
namespace {

using namespace std::chrono_literals;

// A guest speaking the frame protocol by hand: it reads its welcome, then
// only writes.
class SilentGuest {
 public:
  explicit SilentGuest(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const timeval patience{2, 0};  // a hostpeer that never answers fails the test, not hangs it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
    const proto::HelloBody hello{proto::kProtocolMajor, proto::kProtocolMinor,
                                 static_cast<uint8_t>(proto::Role::kGuest), 0, {}, VMCI_INVALID_ID,
                                 0};
    if (!send(proto::encode_frame(proto::FrameType::kHello, 1, hello))) return;
    proto::FrameHeader header{};
    proto::WelcomeBody welcome{};
    // The notify memory that comes with the welcome is not taken: the
    // kernel closes it.
    if (::recv(fd_, &header, sizeof header, MSG_WAITALL) != sizeof header ||
        header.body_size < sizeof welcome ||
        ::recv(fd_, &welcome, sizeof welcome, MSG_WAITALL) != sizeof welcome ||
        welcome.status != VMCI_SUCCESS) {
      return;
    }
    std::vector<uint8_t> rest(header.body_size - sizeof welcome);
    if (!rest.empty()) ::recv(fd_, rest.data(), rest.size(), MSG_WAITALL);
    cid_ = welcome.context_id;
  }
  ~SilentGuest() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentGuest(const SilentGuest&) = delete;
  SilentGuest& operator=(const SilentGuest&) = delete;

  bool joined() const { return cid_ != VMCI_INVALID_ID; }
  vmci_id cid() const { return cid_; }
  // False once hostpeer has closed the connection.
  bool send(const std::vector<uint8_t>& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  bool hypercall(uint32_t request_id, const std::vector<uint8_t>& datagram) {
    return send(proto::encode_frame(proto::FrameType::kDatagram, request_id, datagram));
  }

 private:
  int fd_ = -1;
  vmci_id cid_ = VMCI_INVALID_ID;
};

size_t open_descriptors(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// A line of /proc/PID/status, in KiB ("VmRSS", "VmHWM").
uint64_t status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1));
  }
  return 0;
}

// Allocates a small pair and detaches it, again and again, never reading
// a result (each of which brings the pair's memory as a descriptor), until
// hostpeer cuts it off; then connects again. Counts the cycles and cuts.
struct Hoarder {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> cycles{0};
  std::atomic<uint64_t> cut_off{0};

  void run(const std::string& socket) {
    uint32_t rid = 5000;
    while (!stop) {
      SilentGuest guest(socket);
      if (!guest.joined()) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      for (uint32_t id = 2; !stop; id += 2, ++rid) {
        const vmci_handle h = VMCI_MAKE_HANDLE(guest.cid(), rid);
        if (!guest.hypercall(id, proto::make_qp_alloc_message(h, VMCI_HOST_CONTEXT_ID, 0, 4096,
                                                              4096)) ||
            !guest.hypercall(id + 1, proto::make_qp_detach_message(h))) {
          ++cut_off;
          break;
        }
        ++cycles;
      }
    }
  }
};

TEST(HostileGuests, AGuestHoardingDescriptorsIsCutOffWhileANewcomerConnectsAndAllocates) {
  Daemon daemon;
  const pid_t pid = daemon.process().pid();
  const size_t at_start = open_descriptors(pid);
  Hoarder hoarder;
  std::vector<std::thread> attackers;
  for (int i = 0; i < 2; ++i) {
    attackers.emplace_back([&] { hoarder.run(daemon.socket_path()); });
  }
  size_t most = 0;
  int tries = 0, allocated = 0;
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    most = std::max(most, open_descriptors(pid));
    ++tries;
    int status = 0;
    std::string error;
    auto newcomer = guest::Driver::connect(
        {.socket_path = daemon.socket_path(), .role = proto::Role::kGuest}, &status, &error);
    if (!newcomer) {
      ADD_FAILURE() << "newcomer refused while the attack runs: " << error;
      continue;
    }
    std::unique_ptr<QueuePair> qp;
    vmci_handle h = VMCI_INVALID_HANDLE;
    const int alloc = newcomer->qpair_alloc(&qp, &h, 4096, 4096, VMCI_HOST_CONTEXT_ID, 0, 0);
    EXPECT_EQ(alloc, VMCI_SUCCESS);
    if (alloc == VMCI_SUCCESS) {
      ++allocated;
      EXPECT_EQ(newcomer->qpair_detach(&qp), VMCI_SUCCESS);
    }
    most = std::max(most, open_descriptors(pid));
    std::this_thread::sleep_for(50ms);
  }
  hoarder.stop = true;
  for (auto& t : attackers) t.join();
  std::cout << "hostpeer descriptors: " << at_start << " at start, at most " << most
            << " during the attack; attackers: " << hoarder.cycles << " alloc/detach cycles, cut off "
            << hoarder.cut_off << " times; newcomer: " << allocated << " of " << tries
            << " connected and allocated\n";
  EXPECT_TRUE(daemon.process().running());
  EXPECT_GE(hoarder.cut_off, 2u);
  EXPECT_EQ(allocated, tries);
  EXPECT_GE(tries, 10);
  // Each attacker holds at most its share (256) of unread descriptors.
  EXPECT_LT(most, at_start + 2 * 256 + 64);
  // Once the attackers are gone, hostpeer holds no more than at start (a
  // sanitizer's runtime may have had one open then that it closed since).
  size_t now = open_descriptors(pid);
  for (int i = 0; i < 100 && now > at_start; ++i) {
    std::this_thread::sleep_for(20ms);
    now = open_descriptors(pid);
  }
  EXPECT_LE(now, at_start);
}

// Floods hostpeer with requests whose small results it never reads.
uint64_t flood_without_reading(const std::string& socket) {
  SilentGuest guest(socket);
  if (!guest.joined()) return 0;
  const auto get_cid = proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_GET_CONTEXT_ID),
                                            VMCI_MAKE_HANDLE(guest.cid(), VMCI_INVALID_ID), {});
  std::vector<uint8_t> batch;
  for (uint32_t i = 0; i < 1024; ++i) {
    const auto frame = proto::encode_frame(proto::FrameType::kDatagram, i, get_cid);
    batch.insert(batch.end(), frame.begin(), frame.end());
  }
  uint64_t sent = 0;
  while (guest.send(batch)) {
    sent += 1024;
    if (sent > 4'000'000) break;  // a cap that is not enforced
  }
  return sent;
}

TEST(HostileGuests, PeersThatNeverReadCostHostpeerAboutTheirQueueCapInMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer's allocator keeps freed memory and shadow of its own: the
  // daemon's RSS says nothing of what its queues cost.
  GTEST_SKIP() << "RSS is measured in the default build";
#endif
  Daemon daemon;
  const pid_t pid = daemon.process().pid();
  const uint64_t rss_at_start = status_kib(pid, "VmRSS");
  constexpr int kPeers = 3;
  std::vector<std::thread> floods;
  std::atomic<uint64_t> requests{0};
  for (int i = 0; i < kPeers; ++i) {
    floods.emplace_back([&] { requests += flood_without_reading(daemon.socket_path()); });
  }
  for (auto& t : floods) t.join();
  const uint64_t peak = status_kib(pid, "VmHWM");
  const uint64_t cap_kib = 16 * 1024;  // Session::kMaxQueuedBytes
  std::cout << "hostpeer RSS: " << rss_at_start << " KiB at start, peak " << peak << " KiB after "
            << kPeers << " peers sent " << requests << " requests and read none of the results ("
            << (peak - rss_at_start) / kPeers << " KiB a peer; the cap is " << cap_kib
            << " KiB)\n";
  EXPECT_TRUE(daemon.process().running());
  // Every flood was cut off well before the loop's own cap.
  EXPECT_LT(requests, kPeers * 4'000'000u);
  // What a queue costs is about the cap, not a multiple of it.
  EXPECT_LT(peak - rss_at_start, kPeers * cap_kib * 13 / 10 + 16 * 1024);
}

}  // namespace
}  // namespace vmci::testing
