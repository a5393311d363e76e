// The control-socket server over a real Unix socket, in this process: a
// HostPeer listens in a temporary directory and a raw client, written with
// plain POSIX sockets, speaks the frame protocol of vmci/proto/frame.h.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "server/session.h"
#include "server/socket_access.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/notify_memory.h"
#include "vmci/proto/queue.h"
#include "vmci/proto/queue_pair_hypercalls.h"

namespace vmci::host {
namespace {

using namespace std::chrono_literals;
using proto::FrameType;

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return addr;
}

struct Frame {
  proto::FrameHeader header{};
  std::vector<uint8_t> body;

  FrameType type() const { return static_cast<FrameType>(header.type); }
  template <typename Body>
  Body as() const {
    return proto::decode_body<Body>(body);
  }
  std::string reason(size_t fixed) const { return proto::decode_trailer(body, fixed); }
};

// A peer that speaks the frame protocol by hand, with blocking POSIX calls.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_un addr = address_of(path);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  void close() {
    ::close(fd_);
    fd_ = -1;
  }

  bool send_bytes(std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  template <typename Body>
  bool send(FrameType type, uint32_t request_id, const Body& body) {
    return send_bytes(proto::encode_frame(type, request_id, body));
  }
  bool send_datagram(uint32_t request_id, const std::vector<uint8_t>& datagram) {
    return send_bytes(proto::encode_frame(FrameType::kDatagram, request_id, datagram));
  }
  bool hello(proto::Role role, uint16_t major = proto::kProtocolMajor,
             vmci_id requested_cid = VMCI_INVALID_ID, uint8_t features = 0) {
    proto::HelloBody hello{};
    hello.major = major;
    hello.minor = proto::kProtocolMinor;
    hello.role = static_cast<uint8_t>(role);
    hello.features = features;
    hello.requested_cid = requested_cid;
    return send(FrameType::kHello, 1, hello);
  }
  // Hello, then the welcome's context id (VMCI_INVALID_ID if refused).
  vmci_id join(proto::Role role, vmci_id requested_cid = VMCI_INVALID_ID) {
    if (!hello(role, proto::kProtocolMajor, requested_cid)) return VMCI_INVALID_ID;
    const auto welcome = read_frame();
    if (!welcome || welcome->type() != FrameType::kWelcome) return VMCI_INVALID_ID;
    const auto body = welcome->as<proto::WelcomeBody>();
    return body.status == VMCI_SUCCESS ? body.context_id : VMCI_INVALID_ID;
  }
  // The next frame that is not a delivery, or nothing.
  std::optional<Frame> read_reply() {
    for (;;) {
      auto frame = read_frame();
      if (!frame || frame->type() != FrameType::kDeliver) return frame;
      deliveries.push_back(std::move(*frame));
    }
  }
  // The next delivery (one already read, or one to come), or nothing.
  std::optional<Frame> read_delivery() {
    if (!deliveries.empty()) {
      Frame f = std::move(deliveries.front());
      deliveries.erase(deliveries.begin());
      return f;
    }
    auto frame = read_frame();
    if (!frame || frame->type() != FrameType::kDeliver) return std::nullopt;
    return frame;
  }
  // One whole frame, or nothing on end of stream, error or timeout.
  std::optional<Frame> read_frame(std::chrono::milliseconds timeout = 5s) {
    Frame frame;
    if (!read_exactly(&frame.header, sizeof frame.header, timeout)) return std::nullopt;
    if (frame.header.body_size > proto::kMaxFrameBody) return std::nullopt;
    frame.body.resize(frame.header.body_size);
    if (!read_exactly(frame.body.data(), frame.body.size(), timeout)) return std::nullopt;
    return frame;
  }
  // True once hostpeer closed the connection (whatever it sent before is
  // skipped).
  bool closed_by_hostpeer(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    uint8_t sink[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    }
    return false;
  }

  // One whole frame read with recvmsg, and the descriptors that came with it.
  std::optional<Frame> read_frame_with_fds(std::vector<int>* fds) {
    Frame frame;
    iovec iov{&frame.header, sizeof frame.header};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return std::nullopt;
    if (::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL) != sizeof frame.header) {
      return std::nullopt;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds->push_back(fd);
      }
    }
    frame.body.resize(frame.header.body_size);
    if (!read_exactly(frame.body.data(), frame.body.size(), 5s)) return std::nullopt;
    return frame;
  }

  std::vector<Frame> deliveries;

 private:
  bool read_exactly(void* out, size_t size, std::chrono::milliseconds timeout) {
    auto* bytes = static_cast<uint8_t*>(out);
    size_t done = 0;
    while (done < size) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
      const ssize_t n = ::recv(fd_, bytes + done, size - done, 0);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  int fd_ = -1;
};

class SocketServer : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/hostpeer-server-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/hostpeer.sock";
  }
  void TearDown() override {
    hostpeer_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<HostPeer> start(Limits limits = {}, std::string* error = nullptr) {
    Options options;
    options.socket_path = path_;
    options.limits = limits;
    std::string local_error;
    return HostPeer::start(options, error ? error : &local_error);
  }
  void start_hostpeer(Limits limits = {}) {
    std::string error;
    hostpeer_ = start(limits, &error);
    ASSERT_TRUE(hostpeer_) << error;
  }
  // Waits until the pending count settles at `n` (the session acknowledges
  // on the I/O thread).
  bool pending_becomes(uint64_t n) {
    for (int i = 0; i < 500; ++i) {
      if (hostpeer_->stats().pending_datagrams == n) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<HostPeer> hostpeer_;
};

// Handshake.

uint64_t file_size(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return static_cast<uint64_t>(st.st_size);
}

TEST_F(SocketServer, QueuePairAllocPassesTheMemoryWithTheResult) {
  start_hostpeer();
  RawClient guest(path_), host(path_);
  ASSERT_EQ(guest.join(proto::Role::kGuest, 70), 70u);
  ASSERT_NE(host.join(proto::Role::kHost), VMCI_INVALID_ID);
  const vmci_handle h = VMCI_MAKE_HANDLE(70, 3000);
  ASSERT_TRUE(guest.send_datagram(5, proto::make_qp_alloc_message(h, VMCI_INVALID_ID, 0, 8192, 100)));
  std::vector<int> fds;
  auto reply = guest.read_frame_with_fds(&fds);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type(), FrameType::kResult);
  EXPECT_EQ(reply->header.request_id, 5u);
  EXPECT_EQ(reply->as<proto::ResultBody>().result, VMCI_SUCCESS);
  EXPECT_EQ(reply->header.flags, 1u);
  ASSERT_EQ(fds.size(), 1u);  // a guest: the pair's memory
  EXPECT_EQ(file_size(fds[0]), proto::queue_pair_layout(8192, 100).total);

  const proto::QueuePairAllocBody attach{h, VMCI_INVALID_ID, 0, 0, 0, 100, 8192};
  ASSERT_TRUE(host.send(FrameType::kQueuePairAlloc, 6, attach));
  std::vector<int> host_fds;
  reply = host.read_frame_with_fds(&host_fds);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->as<proto::ResultBody>().result, VMCI_SUCCESS);
  EXPECT_TRUE(proto::same_handle(reply->as<proto::ResultBody>().handle, h));
  EXPECT_EQ(reply->header.flags, 2u);
  ASSERT_EQ(host_fds.size(), 2u);  // a host: the memory and its status page
  EXPECT_EQ(file_size(host_fds[1]), proto::kQueuePairStatusSize);
  for (int fd : fds) ::close(fd);
  for (int fd : host_fds) ::close(fd);
  EXPECT_EQ(hostpeer_->stats().queue_pairs, 1u);
}

TEST_F(SocketServer, GuestsCannotUseTheHostsBrokerCalls) {
  start_hostpeer();
  RawClient guest(path_);
  ASSERT_NE(guest.join(proto::Role::kGuest), VMCI_INVALID_ID);
  const proto::QueuePairAllocBody alloc{VMCI_INVALID_HANDLE, VMCI_INVALID_ID, 0, 0, 0, 4096, 4096};
  ASSERT_TRUE(guest.send(FrameType::kQueuePairAlloc, 3, alloc));
  std::vector<int> fds;
  const auto reply = guest.read_frame_with_fds(&fds);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->as<proto::ResultBody>().result, VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(reply->header.flags, 0u);
  EXPECT_TRUE(fds.empty());
  EXPECT_EQ(hostpeer_->stats().queue_pairs, 0u);
}

TEST_F(SocketServer, GuestHelloIsWelcomedWithAnAssignedContextId) {
  start_hostpeer();
  RawClient guest(path_);
  ASSERT_TRUE(guest.hello(proto::Role::kGuest));
  const auto welcome = guest.read_frame();
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->type(), FrameType::kWelcome);
  EXPECT_EQ(welcome->header.request_id, 1u);
  const auto body = welcome->as<proto::WelcomeBody>();
  EXPECT_EQ(body.status, VMCI_SUCCESS);
  EXPECT_EQ(body.context_id, 16u);
  EXPECT_EQ(body.major, proto::kProtocolMajor);
  EXPECT_EQ(body.minor, proto::kProtocolMinor);
}

TEST_F(SocketServer, HostConnectionsShareContext2) {
  start_hostpeer();
  RawClient a(path_), b(path_);
  EXPECT_EQ(a.join(proto::Role::kHost), VMCI_HOST_CONTEXT_ID);
  EXPECT_EQ(b.join(proto::Role::kHost), VMCI_HOST_CONTEXT_ID);
  EXPECT_EQ(hostpeer_->stats().host_connections, 2u);
}

TEST_F(SocketServer, RequestedContextIdInUseIsRefusedWithAReason) {
  start_hostpeer();
  RawClient first(path_), second(path_);
  ASSERT_EQ(first.join(proto::Role::kGuest, 77), 77u);
  ASSERT_TRUE(second.hello(proto::Role::kGuest, proto::kProtocolMajor, 77));
  const auto welcome = second.read_frame();
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->as<proto::WelcomeBody>().status, VMCI_ERROR_ALREADY_EXISTS);
  EXPECT_NE(welcome->reason(sizeof(proto::WelcomeBody)).find("77"), std::string::npos);
  EXPECT_TRUE(second.closed_by_hostpeer());
}

TEST_F(SocketServer, WrongMajorVersionIsRefusedNamingBothVersions) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_TRUE(client.hello(proto::Role::kGuest, proto::kProtocolMajor + 1));
  const auto welcome = client.read_frame();
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->type(), FrameType::kWelcome);
  EXPECT_EQ(welcome->as<proto::WelcomeBody>().status, VMCI_ERROR_INVALID_ARGS);
  const std::string reason = welcome->reason(sizeof(proto::WelcomeBody));
  const std::string theirs =
      std::to_string(proto::kProtocolMajor + 1) + "." + std::to_string(proto::kProtocolMinor);
  const std::string ours =
      std::to_string(proto::kProtocolMajor) + "." + std::to_string(proto::kProtocolMinor);
  EXPECT_NE(reason.find(theirs), std::string::npos) << reason;
  EXPECT_NE(reason.find(ours), std::string::npos) << reason;
  EXPECT_TRUE(client.closed_by_hostpeer());
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 0u);
}

TEST_F(SocketServer, FirstFrameMustBeHello) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_TRUE(client.send(FrameType::kSync, 5, proto::DeliveredBody{}));
  const auto goodbye = client.read_frame();
  ASSERT_TRUE(goodbye);
  ASSERT_EQ(goodbye->type(), FrameType::kGoodbye);
  EXPECT_EQ(goodbye->as<proto::GoodbyeBody>().status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_NE(goodbye->reason(sizeof(proto::GoodbyeBody)).find("hello"), std::string::npos);
  EXPECT_TRUE(client.closed_by_hostpeer());
}

TEST_F(SocketServer, SecondHelloEndsTheSession) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_EQ(client.join(proto::Role::kGuest), 16u);
  ASSERT_TRUE(client.hello(proto::Role::kGuest));
  const auto goodbye = client.read_frame();
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->type(), FrameType::kGoodbye);
  EXPECT_TRUE(client.closed_by_hostpeer());
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 0u);
}

TEST_F(SocketServer, UnknownRoleIsRefused) {
  start_hostpeer();
  RawClient client(path_);
  proto::HelloBody hello{};
  hello.major = proto::kProtocolMajor;
  hello.role = 9;
  hello.requested_cid = VMCI_INVALID_ID;
  ASSERT_TRUE(client.send(FrameType::kHello, 1, hello));
  const auto welcome = client.read_frame();
  ASSERT_TRUE(welcome);
  EXPECT_EQ(welcome->as<proto::WelcomeBody>().status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_TRUE(client.closed_by_hostpeer());
}

// Bad frames end only the session that sent them.

TEST_F(SocketServer, OversizedBodyIsRefusedBeforeItIsRead) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_EQ(client.join(proto::Role::kGuest), 16u);
  // Only the header: hostpeer must answer without waiting for the body.
  const proto::FrameHeader header{proto::kFrameMagic, static_cast<uint16_t>(FrameType::kDatagram),
                                  0, proto::kMaxFrameBody + 1, 7};
  ASSERT_TRUE(client.send_bytes({reinterpret_cast<const uint8_t*>(&header), sizeof header}));
  const auto goodbye = client.read_frame(2s);
  ASSERT_TRUE(goodbye);
  ASSERT_EQ(goodbye->type(), FrameType::kGoodbye);
  EXPECT_EQ(goodbye->as<proto::GoodbyeBody>().status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_FALSE(goodbye->reason(sizeof(proto::GoodbyeBody)).empty());
  EXPECT_TRUE(client.closed_by_hostpeer());
}

TEST_F(SocketServer, BadMagicEndsOnlyThatSession) {
  start_hostpeer();
  RawClient bad(path_), good(path_);
  ASSERT_EQ(good.join(proto::Role::kGuest), 16u);
  ASSERT_EQ(bad.join(proto::Role::kGuest), 17u);
  const proto::FrameHeader header{0xdeadbeef, static_cast<uint16_t>(FrameType::kSync), 0,
                                  sizeof(proto::DeliveredBody), 1};
  ASSERT_TRUE(bad.send_bytes({reinterpret_cast<const uint8_t*>(&header), sizeof header}));
  const auto goodbye = bad.read_frame();
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->type(), FrameType::kGoodbye);
  EXPECT_TRUE(bad.closed_by_hostpeer());

  ASSERT_TRUE(good.send(FrameType::kSync, 9, proto::DeliveredBody{}));
  const auto result = good.read_reply();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->type(), FrameType::kResult);
  EXPECT_EQ(result->header.request_id, 9u);
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 1u);
}

TEST_F(SocketServer, FrameMeantForPeersIsRefused) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_EQ(client.join(proto::Role::kGuest), 16u);
  ASSERT_TRUE(client.send(FrameType::kResult, 3, proto::ResultBody{}));
  const auto goodbye = client.read_frame();
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->type(), FrameType::kGoodbye);
  EXPECT_TRUE(client.closed_by_hostpeer());
}

// Requests and deliveries.

TEST_F(SocketServer, GuestDatagramReachesAHostConnectionAndIsPendingUntilAcknowledged) {
  start_hostpeer();
  RawClient host(path_), guest(path_);
  ASSERT_EQ(host.join(proto::Role::kHost), VMCI_HOST_CONTEXT_ID);
  ASSERT_EQ(guest.join(proto::Role::kGuest), 16u);

  ASSERT_TRUE(host.send(FrameType::kHandleCreate, 2, proto::HandleCreateBody{4242, 0, 0, 0}));
  const auto created = host.read_reply();
  ASSERT_TRUE(created);
  ASSERT_EQ(created->type(), FrameType::kResult);
  EXPECT_EQ(created->header.request_id, 2u);
  EXPECT_EQ(created->as<proto::ResultBody>().result, VMCI_SUCCESS);
  EXPECT_TRUE(proto::same_handle(created->as<proto::ResultBody>().handle,
                                 VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 4242)));

  const std::vector<uint8_t> payload{'h', 'e', 'l', 'l', 'o'};
  const auto dg =
      proto::make_datagram(VMCI_MAKE_HANDLE(2, 4242), VMCI_MAKE_HANDLE(16, 1024), payload);
  ASSERT_TRUE(guest.send_datagram(3, dg));
  // Routed: the guest's next datagrams to the handle may take the lane of a
  // ring channel to the host connection (the grant comes before the result).
  const auto granted = guest.read_reply();
  ASSERT_TRUE(granted);
  ASSERT_EQ(granted->type(), FrameType::kRingGrant);
  const auto grant = granted->as<proto::RingGrantBody>();
  EXPECT_EQ(grant.kind, static_cast<uint8_t>(proto::SlotKind::kDatagram));
  EXPECT_EQ(grant.side, static_cast<uint8_t>(proto::RingSide::kRinger));
  EXPECT_TRUE(proto::same_handle(grant.handle, VMCI_MAKE_HANDLE(2, 4242)));
  EXPECT_EQ(grant.lane_cap, 139264u);
  const auto sent = guest.read_reply();
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->header.request_id, 3u);
  EXPECT_EQ(sent->as<proto::ResultBody>().result, 29);  // 24 + 5 (spec §3.5)

  const auto delivery = host.read_delivery();
  ASSERT_TRUE(delivery);
  EXPECT_EQ(delivery->body, dg);
  EXPECT_EQ(hostpeer_->stats().pending_datagrams, 1u);
  ASSERT_TRUE(
      host.send(FrameType::kDelivered, delivery->header.request_id, proto::DeliveredBody{}));
  EXPECT_TRUE(pending_becomes(0));
}

TEST_F(SocketServer, APeerThatCountsItsDeliveriesInItsNotifyMemoryRetiresThemByCount) {
  start_hostpeer();
  RawClient host(path_), guest(path_);
  ASSERT_TRUE(host.hello(proto::Role::kHost, proto::kProtocolMajor, VMCI_INVALID_ID,
                         proto::kFeatureCountedDeliveries));
  std::vector<int> fds;
  const auto welcome = host.read_frame_with_fds(&fds);
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->as<proto::WelcomeBody>().minor, proto::kProtocolMinor);
  ASSERT_EQ(fds.size(), 1u);
  std::string error;
  const auto notify = proto::SharedMemory::map_fd(fds[0], proto::kNotifyMemorySize, &error);
  ::close(fds[0]);
  ASSERT_TRUE(notify) << error;
  auto* memory = reinterpret_cast<proto::NotifyMemory*>(notify->data());
  ASSERT_EQ(guest.join(proto::Role::kGuest), 16u);
  ASSERT_TRUE(host.send(FrameType::kHandleCreate, 2, proto::HandleCreateBody{4242, 0, 0, 0}));
  ASSERT_TRUE(host.read_reply());

  // The next delivery, past the lane grants the host is sent as owner.
  const auto next_delivery = [&host] {
    for (;;) {
      std::vector<int> fds;
      auto frame = host.read_frame_with_fds(&fds);
      for (int fd : fds) ::close(fd);
      if (!frame || frame->type() == FrameType::kDeliver) return frame.has_value();
    }
  };
  const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(2, 4242), VMCI_MAKE_HANDLE(16, 1024),
                                       std::vector<uint8_t>(8, 'x'));
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(guest.send_datagram(10 + i, dg));
    ASSERT_TRUE(next_delivery());
  }
  EXPECT_TRUE(pending_becomes(3));
  proto::publish_deliveries_reached(memory, 2);
  EXPECT_EQ(hostpeer_->stats().pending_datagrams, 1u);  // settled when looked at
  proto::publish_deliveries_reached(memory, 3);
  EXPECT_EQ(hostpeer_->stats().pending_datagrams, 0u);
  // A count of more than was given is a claim: it retires what is pending,
  // is logged, and the connection goes on.
  ASSERT_TRUE(guest.send_datagram(20, dg));
  ASSERT_TRUE(next_delivery());
  proto::publish_deliveries_reached(memory, 1000);
  EXPECT_EQ(hostpeer_->stats().pending_datagrams, 0u);
  ASSERT_TRUE(guest.send_datagram(21, dg));
  EXPECT_TRUE(next_delivery());
}

TEST_F(SocketServer, AGuestThatForgesAnotherContextAsSourceIsRefusedWithNoAccess) {
  start_hostpeer();
  RawClient host(path_), guest(path_), other(path_);
  ASSERT_EQ(host.join(proto::Role::kHost), VMCI_HOST_CONTEXT_ID);
  ASSERT_EQ(guest.join(proto::Role::kGuest), 16u);
  ASSERT_EQ(other.join(proto::Role::kGuest), 17u);
  ASSERT_TRUE(host.send(FrameType::kHandleCreate, 2, proto::HandleCreateBody{4242, 0, 0, 0}));
  ASSERT_TRUE(host.read_reply());
  // Bypassing the library: the frame names context 17 (or the host, or the
  // hypervisor) as its source.
  for (const vmci_id forged : std::vector<vmci_id>{17, VMCI_HOST_CONTEXT_ID, VMCI_HYPERVISOR_CONTEXT_ID}) {
    const auto dg =
        proto::make_datagram(VMCI_MAKE_HANDLE(2, 4242), VMCI_MAKE_HANDLE(forged, 1024), {});
    ASSERT_TRUE(guest.send_datagram(3, dg));
    const auto reply = guest.read_reply();
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->type(), FrameType::kResult);
    EXPECT_EQ(reply->as<proto::ResultBody>().result, VMCI_ERROR_NO_ACCESS) << forged;
  }
  EXPECT_EQ(hostpeer_->stats().datagrams_routed, 0u);
  EXPECT_EQ(hostpeer_->stats().ring_grants, 0u);
}

TEST_F(SocketServer, HypercallsAreAnsweredThroughTheSocket) {
  start_hostpeer();
  RawClient guest(path_);
  ASSERT_EQ(guest.join(proto::Role::kGuest, 300), 300u);
  const auto dg =
      proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_GET_CONTEXT_ID), VMCI_ANON_SRC_HANDLE, {});
  ASSERT_TRUE(guest.send_datagram(4, dg));
  const auto result = guest.read_reply();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->as<proto::ResultBody>().result, 300);
}

TEST_F(SocketServer, GuestsCannotCreateHostHandles) {
  start_hostpeer();
  RawClient guest(path_);
  ASSERT_EQ(guest.join(proto::Role::kGuest), 16u);
  ASSERT_TRUE(guest.send(FrameType::kHandleCreate, 2, proto::HandleCreateBody{4242, 0, 0, 0}));
  const auto result = guest.read_reply();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->as<proto::ResultBody>().result, VMCI_ERROR_NO_ACCESS);
}

TEST_F(SocketServer, GuestLeavingSendsCtxRemovedToHostConnections) {
  start_hostpeer();
  RawClient host(path_);
  ASSERT_EQ(host.join(proto::Role::kHost), VMCI_HOST_CONTEXT_ID);
  {
    RawClient guest(path_);
    ASSERT_EQ(guest.join(proto::Role::kGuest, 42), 42u);
  }
  const auto delivery = host.read_delivery();
  ASSERT_TRUE(delivery);
  vmci_event_context event;
  ASSERT_EQ(delivery->body.size(), sizeof event);
  std::memcpy(&event, delivery->body.data(), sizeof event);
  EXPECT_EQ(event.msg.event_data.event, unsigned{VMCI_EVENT_CTX_REMOVED});
  EXPECT_EQ(event.payload.context_id, 42u);
}

TEST_F(SocketServer, PeerThatStopsReadingIsCutOff) {
  // A pending cap far above the session's write-queue bound, so only the
  // latter stops the flood.
  start_hostpeer(Limits{.max_pending_datagram_bytes = 1ull << 30});
  RawClient guest(path_);
  const vmci_id cid = guest.join(proto::Role::kGuest);
  ASSERT_NE(cid, VMCI_INVALID_ID);
  auto host = hostpeer_->connect_host();
  vmci_handle src;
  ASSERT_EQ(host->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &src),
            VMCI_SUCCESS);
  const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(cid, 1), src,
                                       std::vector<uint8_t>(proto::kMaxDatagramPayload, 0x5a));
  int last = 0;
  for (int i = 0; i < 2000; ++i) {
    last = host->datagram_send(reinterpret_cast<const vmci_datagram*>(dg.data()));
    if (last < 0) break;
    if (i > 200) std::this_thread::sleep_for(1ms);  // let the I/O thread catch up
  }
  EXPECT_EQ(last, VMCI_ERROR_DST_UNREACHABLE);  // the guest context is gone
  EXPECT_TRUE(guest.closed_by_hostpeer());
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 0u);
}

TEST_F(SocketServer, AConnectionThatSaysNoHelloIsClosedAtItsDeadline) {
  Options options;
  options.socket_path = path_;
  options.hello_deadline = std::chrono::milliseconds(200);
  std::string error;
  hostpeer_ = HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer_) << error;
  RawClient silent(path_);
  ASSERT_TRUE(silent.connected());
  const auto connected = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.closed_by_hostpeer(5s));
  EXPECT_GE(std::chrono::steady_clock::now() - connected, 150ms);
  RawClient prompt(path_);  // one that says hello in time is served
  EXPECT_NE(prompt.join(proto::Role::kGuest), VMCI_INVALID_ID);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 1u);
}

// Context switches of every thread of this process but the caller's: here,
// hostpeer's.
uint64_t others_switches() {
  uint64_t total = 0;
  const std::string self = std::to_string(::gettid());
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    if (task.path().filename() == self) continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::stoull(line.substr(line.find(':') + 1));
      }
    }
  }
  return total;
}

// A hello ends its connection's deadline, and hostpeer, idle after it,
// does not wake when that deadline would have been due.
TEST_F(SocketServer, NoWakeUpWhenAnAnsweredHelloDeadlineWouldHaveBeenDue) {
#if defined(__SANITIZE_THREAD__)
  // TSan's runtime runs a thread of its own in this process, which wakes
  // every 100 ms and would be counted with hostpeer's.
  GTEST_SKIP() << "wake-ups are counted in the other builds";
#endif
  Options options;
  options.socket_path = path_;
  options.hello_deadline = std::chrono::milliseconds(300);
  std::string error;
  hostpeer_ = HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer_) << error;
  RawClient guest(path_);
  ASSERT_NE(guest.join(proto::Role::kGuest), VMCI_INVALID_ID);
  std::this_thread::sleep_for(100ms);
  const uint64_t before = others_switches();
  std::this_thread::sleep_for(500ms);  // past the deadline
  EXPECT_EQ(others_switches(), before);
  EXPECT_EQ(hostpeer_->stats().guest_contexts, 1u);
}

TEST_F(SocketServer, AGoodbyeThePeerDoesNotReadEndsTheConnectionAtItsDeadline) {
  start_hostpeer();
  RawClient peer(path_);
  ASSERT_EQ(peer.join(proto::Role::kGuest), 16u);
  // Results it does not read fill its socket, and queue behind it...
  const std::vector<uint8_t> sync = proto::encode_frame(FrameType::kSync, 1, proto::DeliveredBody{});
  std::vector<uint8_t> many;
  for (int i = 0; i < 50000; ++i) many.insert(many.end(), sync.begin(), sync.end());
  ASSERT_TRUE(peer.send_bytes(many));
  // ...then a frame that ends the session, with a goodbye queued behind them.
  const proto::FrameHeader bad{0xdeadbeef, static_cast<uint16_t>(FrameType::kSync), 0, 0, 1};
  ASSERT_TRUE(peer.send_bytes({reinterpret_cast<const uint8_t*>(&bad), sizeof bad}));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::this_thread::sleep_for(50ms);
    gone = hostpeer_->stats().guest_contexts == 0;
  }
  EXPECT_TRUE(gone);  // within Session::kGoodbyeDeadline, though it never read
}

// The socket file.

TEST_F(SocketServer, SocketFileHasMode0600) {
  start_hostpeer();
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// The allow-lists' users get read and write on the socket by an ACL entry
// each (socket_access.h); the group and others still get nothing.
TEST_F(SocketServer, AllowedUsersAreGivenTheSocketByAnAcl) {
  Options options;
  options.socket_path = path_;
  options.guest_uids = {65534};
  options.host_uids = {65533, ::getuid()};
  std::string error;
  hostpeer_ = HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer_) << error;
  std::vector<uint8_t> acl(256);
  const ssize_t size = ::getxattr(path_.c_str(), "system.posix_acl_access", acl.data(), acl.size());
  ASSERT_GT(size, 0) << std::strerror(errno);
  acl.resize(static_cast<size_t>(size));
  EXPECT_EQ(acl, socket_access_acl({65533, 65534}));
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);  // the group bits show the ACL's mask
}

TEST_F(SocketServer, StaleSocketFileIsReplaced) {
  {  // A socket file nobody listens on, as a killed hostpeer leaves it.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un addr = address_of(path_);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  start_hostpeer();
  RawClient client(path_);
  EXPECT_EQ(client.join(proto::Role::kGuest), 16u);
}

TEST_F(SocketServer, LiveSocketIsRefused) {
  start_hostpeer();
  std::string error;
  EXPECT_FALSE(start({}, &error));
  EXPECT_EQ(error, path_ + " is being served by a running hostpeer or another program (process " +
                       std::to_string(::getpid()) + ", user " + std::to_string(::getuid()) +
                       "): stop it first, or choose another socket path");
  RawClient client(path_);  // the first one still serves
  EXPECT_EQ(client.join(proto::Role::kGuest), 16u);
}

TEST_F(SocketServer, TooLongAPathIsRefusedGivingTheLimit) {
  path_ = dir_ + "/" + std::string(108 - dir_.size(), 'p');
  ASSERT_EQ(path_.size(), 109u);
  std::string error;
  EXPECT_FALSE(start({}, &error));
  EXPECT_NE(error.find("is 109 bytes long; a Unix socket path holds at most 107"),
            std::string::npos)
      << error;
}

TEST_F(SocketServer, AHandedOverSocketIsServedAndItsFileLeftAtStop) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un addr = address_of(path_);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  Options options;
  options.socket_path = dir_ + "/not-used.sock";
  options.listening_socket = fd;
  std::string error;
  hostpeer_ = HostPeer::start(options, &error);
  ASSERT_TRUE(hostpeer_) << error;
  EXPECT_EQ(hostpeer_->socket_path(), path_);
  {
    RawClient client(path_);
    EXPECT_EQ(client.join(proto::Role::kGuest), 16u);
  }
  hostpeer_.reset();
  EXPECT_TRUE(std::filesystem::exists(path_));
  EXPECT_FALSE(std::filesystem::exists(options.socket_path));
}

TEST_F(SocketServer, AHandedOverSocketThatDoesNotListenIsRefusedAndClosed) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Options options;
  options.listening_socket = fd;
  std::string error;
  EXPECT_FALSE(HostPeer::start(options, &error));
  EXPECT_NE(error.find("is not a listening Unix stream socket"), std::string::npos) << error;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "the descriptor was closed";
}

TEST_F(SocketServer, FileThatIsNotASocketIsLeftAlone) {
  {
    std::FILE* f = std::fopen(path_.c_str(), "w");
    std::fclose(f);
  }
  std::string error;
  EXPECT_FALSE(start({}, &error));
  EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
  EXPECT_TRUE(std::filesystem::is_regular_file(path_));
}

TEST_F(SocketServer, StopClosesConnectionsAndRemovesTheSocket) {
  start_hostpeer();
  RawClient client(path_);
  ASSERT_EQ(client.join(proto::Role::kGuest), 16u);
  hostpeer_.reset();
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_TRUE(client.closed_by_hostpeer());
}

TEST_F(SocketServer, NewHostPeerCanTakeTheSocketAfterStop) {
  start_hostpeer();
  hostpeer_.reset();
  start_hostpeer();
  RawClient client(path_);
  EXPECT_EQ(client.join(proto::Role::kGuest), 16u);
}

// Who may connect (SO_PEERCRED uids).

TEST(PeerPolicy, OwnUserMayBeGuestOrHost) {
  const PeerPolicy policy{1000, {}, {}};
  EXPECT_TRUE(policy.may_connect(1000));
  EXPECT_TRUE(policy.may_be_host(1000));
  EXPECT_FALSE(policy.may_connect(1001));
  EXPECT_FALSE(policy.may_be_host(1001));
}

TEST(PeerPolicy, AllowedGuestUserMayNotBeHost) {
  const PeerPolicy policy{1000, {2000}, {}};
  EXPECT_TRUE(policy.may_connect(2000));
  EXPECT_FALSE(policy.may_be_host(2000));
}

TEST(PeerPolicy, OtherUsersAreThoseOfBothListsOnceWithoutHostpeersOwn) {
  const PeerPolicy policy{1000, {2000, 1000, 3000}, {3000, 4000}};
  EXPECT_EQ(policy.other_users(), (std::vector<uid_t>{2000, 3000, 4000}));
}

TEST(PeerPolicy, AllowedHostUserMayConnectAndBeHost) {
  const PeerPolicy policy{1000, {}, {3000}};
  EXPECT_TRUE(policy.may_connect(3000));
  EXPECT_TRUE(policy.may_be_host(3000));
}

}  // namespace
}  // namespace vmci::host
