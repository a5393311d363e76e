// Garbage on the control socket never takes hostpeer down, and never stops
// another peer's traffic.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "processes.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/frame.h"

namespace vmci::testing {
namespace {

int raw_connect(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_bytes(int fd, const std::vector<uint8_t>& bytes) {
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
}

std::vector<uint8_t> hello(proto::Role role) {
  const proto::HelloBody body{proto::kProtocolMajor,
                              proto::kProtocolMinor,
                              static_cast<uint8_t>(role),
                              0,
                              {},
                              VMCI_INVALID_ID,
                              0};
  return proto::encode_frame(proto::FrameType::kHello, 0, body);
}

// One of several kinds of bad input, chosen by `kind`.
std::vector<uint8_t> bad_frame(std::mt19937& rng, int kind) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> out;
  switch (kind) {
    case 0: {  // random bytes
      out.resize(std::uniform_int_distribution<size_t>(1, 200)(rng));
      for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
      break;
    }
    case 1: {  // a valid datagram frame, truncated
      const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(2, 1), VMCI_MAKE_HANDLE(16, 1024),
                                           std::vector<uint8_t>(100, 7));
      out = proto::encode_frame(proto::FrameType::kDatagram, 1, dg);
      out.resize(std::uniform_int_distribution<size_t>(1, out.size() - 1)(rng));
      break;
    }
    case 2: {  // a header claiming a huge body
      proto::FrameHeader h{proto::kFrameMagic, static_cast<uint16_t>(proto::FrameType::kDatagram),
                           0, 0xfffffff0u, 1};
      out.resize(sizeof h);
      std::memcpy(out.data(), &h, sizeof h);
      break;
    }
    case 3: {  // a datagram whose payload_size lies
      auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(2, 1), VMCI_MAKE_HANDLE(16, 1024),
                                     std::vector<uint8_t>(10, 1));
      const uint64_t lie = std::uniform_int_distribution<uint64_t>()(rng);
      std::memcpy(dg.data() + 16, &lie, sizeof lie);
      out = proto::encode_frame(proto::FrameType::kDatagram, 1, dg);
      break;
    }
    case 4: {  // frames of every type with random bodies
      const auto type = static_cast<uint16_t>(std::uniform_int_distribution<int>(0, 12)(rng));
      std::vector<uint8_t> body(std::uniform_int_distribution<size_t>(0, 64)(rng));
      for (auto& b : body) b = static_cast<uint8_t>(byte(rng));
      proto::FrameHeader h{proto::kFrameMagic, type, 0, static_cast<uint32_t>(body.size()), 3};
      out.resize(sizeof h);
      std::memcpy(out.data(), &h, sizeof h);
      out.insert(out.end(), body.begin(), body.end());
      break;
    }
    default: {  // a delivery acknowledgement for deliveries that never happened
      out = proto::encode_frame(proto::FrameType::kDelivered,
                                std::uniform_int_distribution<uint32_t>()(rng),
                                proto::DeliveredBody{});
      break;
    }
  }
  return out;
}

TEST(BadInput, ThousandsOfRandomAndTruncatedFramesNeverStopHostpeerOrOtherPeers) {
  Daemon daemon;
  Peer host, vm;
  ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(host.call("create 4242"), "0 2:4242");
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest"), "0 16");
  ASSERT_EQ(vm.call("create any"), "0 16:1024");

  std::mt19937 rng(20261125);
  constexpr int kConnections = 2000;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = raw_connect(daemon.socket_path());
    ASSERT_GE(fd, 0) << "hostpeer stopped accepting after " << i << " bad connections";
    if (i % 3 != 0) send_bytes(fd, hello(i % 2 ? proto::Role::kGuest : proto::Role::kHost));
    for (int j = 0; j < 3; ++j) send_bytes(fd, bad_frame(rng, (i + j) % 6));
    ::close(fd);
    if (i % 250 == 0) {
      SCOPED_TRACE(i);
      ASSERT_EQ(vm.call("send 16:1024 2:4242 abcd"), "26");
      ASSERT_EQ(host.call("next 3000"), "datagram 2:4242 16:1024 abcd");
    }
  }
  EXPECT_TRUE(daemon.process().running());
  EXPECT_EQ(vm.call("send 16:1024 2:4242 ef"), "25");
  EXPECT_EQ(host.call("next 3000"), "datagram 2:4242 16:1024 ef");
}

TEST(BadInput, WrongMajorVersionIsRefusedNamingBothVersions) {
  Daemon daemon;
  const int fd = raw_connect(daemon.socket_path());
  ASSERT_GE(fd, 0);
  const proto::HelloBody body{static_cast<uint16_t>(proto::kProtocolMajor + 1),
                              7,
                              static_cast<uint8_t>(proto::Role::kGuest),
                              0,
                              {},
                              VMCI_INVALID_ID,
                              0};
  send_bytes(fd, proto::encode_frame(proto::FrameType::kHello, 0, body));
  proto::FrameHeader h{};
  ASSERT_EQ(::recv(fd, &h, sizeof h, MSG_WAITALL), static_cast<ssize_t>(sizeof h));
  ASSERT_TRUE(proto::check_frame_header(h, proto::Direction::kToPeer).ok);
  std::vector<uint8_t> reply(h.body_size);
  ASSERT_EQ(::recv(fd, reply.data(), reply.size(), MSG_WAITALL),
            static_cast<ssize_t>(reply.size()));
  const auto welcome = proto::decode_body<proto::WelcomeBody>(reply);
  EXPECT_LT(welcome.status, 0);
  const std::string reason = proto::decode_trailer(reply, sizeof welcome);
  EXPECT_NE(reason.find(std::to_string(proto::kProtocolMajor + 1) + ".7"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find(std::to_string(proto::kProtocolMajor) + "." +
                        std::to_string(proto::kProtocolMinor)),
            std::string::npos)
      << reason;
  ::close(fd);
}

}  // namespace
}  // namespace vmci::testing

namespace vmci::testing {
namespace {

// Out of file descriptors, hostpeer refuses what it cannot accept, does not
// spin, and serves again once descriptors are free.
TEST(BadInput, RunningOutOfDescriptorsIsSurvived) {
#ifdef __SANITIZE_ADDRESS__
  // UBSan's vptr check probes memory through a pipe; with no descriptor
  // left it reports every virtual call, a false positive of the runtime.
  GTEST_SKIP() << "the sanitizer runtime itself needs file descriptors";
#endif
  TempDir dir;
  const std::string socket = dir.path() + "/hostpeer.sock";
  const std::string log = dir.path() + "/hostpeer.log";
  ChildProcess daemon({"/bin/sh", "-c",
                       std::string("exec /usr/bin/prlimit --nofile=24 ") + VMCI_HOSTPEER_BIN +
                           " --socket " + socket + " --log-level warn 2>" + log},
                      {});
  for (int i = 0; i < 1000 && !socket_answers(socket); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::vector<int> flood;
  for (int i = 0; i < 64; ++i) {
    const int fd = raw_connect(socket);  // the kernel's backlog accepts these
    if (fd >= 0) flood.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int fd : flood) ::close(fd);
  EXPECT_TRUE(daemon.running());
  // Once the flood is gone, peers are served again.
  Peer vm;
  std::string answer;
  for (int i = 0; i < 50; ++i) {
    answer = vm.call("connect " + socket + " guest", 2000);
    if (answer.rfind("0 ", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(answer.rfind("0 ", 0), 0u) << answer;
  // It said so once, naming the limit and how to raise it, retried at a
  // measured pace rather than in a busy loop (the rest at debug), and said
  // when it accepted again.
  daemon.signal(SIGTERM);
  daemon.wait(5000);
  std::ifstream in(log);
  std::vector<std::string> failures;
  bool again = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("accept failed") != std::string::npos) failures.push_back(line);
    again = again || line.find("accepting again, after") != std::string::npos;
  }
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_NE(failures[0].find("RLIMIT_NOFILE is 24 soft"), std::string::npos) << failures[0];
  EXPECT_NE(failures[0].find("ulimit -n"), std::string::npos) << failures[0];
  EXPECT_TRUE(again);
}

}  // namespace
}  // namespace vmci::testing
