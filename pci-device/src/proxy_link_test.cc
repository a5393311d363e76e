// proxy_link_test.cc: the mpqemu framing, one test per error path.
#include "proxy_link.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "quiet_logger.h"

namespace vmci::pcidev {
namespace {

// QEMU's end of the link, as a test drives it.
class FakeQemu {
 public:
  FakeQemu() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    qemu_.reset(fds[0]);
    device_.reset(fds[1]);
  }
  UniqueFd take_device_end() { return std::move(device_); }

  void send(int32_t cmd, const std::vector<uint8_t>& body, const std::vector<int>& fds = {},
            uint64_t claimed_size = UINT64_MAX) {
    MpqemuHeader h{cmd, 0, claimed_size == UINT64_MAX ? body.size() : claimed_size};
    std::vector<uint8_t> bytes(sizeof(h));
    std::memcpy(bytes.data(), &h, sizeof(h));
    bytes.insert(bytes.end(), body.begin(), body.end());
    iovec iov{bytes.data(), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
    if (!fds.empty()) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(::sendmsg(qemu_.get(), &msg, 0), static_cast<ssize_t>(bytes.size()));
  }

  // Reads one RET; returns its value.
  uint64_t ret() {
    uint8_t bytes[24];
    size_t done = 0;
    while (done < sizeof(bytes)) {
      ssize_t n = ::read(qemu_.get(), bytes + done, sizeof(bytes) - done);
      if (n <= 0) return 0xdead;
      done += static_cast<size_t>(n);
    }
    MpqemuHeader h;
    std::memcpy(&h, bytes, 16);
    EXPECT_EQ(h.cmd, 1);
    EXPECT_EQ(h.size, 8u);
    uint64_t v;
    std::memcpy(&v, bytes + 16, 8);
    return v;
  }
  // QEMU stops sending (its end stays open for the RETs already due).
  void close() { ::shutdown(qemu_.get(), SHUT_WR); }

 private:
  UniqueFd qemu_, device_;
};

template <typename T>
void put(std::vector<uint8_t>& body, size_t at, T value) {
  std::memcpy(body.data() + at, &value, sizeof(T));
}

std::vector<uint8_t> config_body(uint32_t addr, uint32_t value, int32_t len) {
  std::vector<uint8_t> b(12);
  put(b, 0, addr);
  put(b, 4, value);
  put(b, 8, len);
  return b;
}

std::vector<uint8_t> bar_body(uint64_t addr, uint64_t value, uint32_t size, bool memory) {
  std::vector<uint8_t> b(24);
  put(b, 0, addr);
  put(b, 8, value);
  put(b, 16, size);
  put(b, 20, static_cast<uint8_t>(memory));
  return b;
}

class RecordingHandler : public ProxyMessageHandler {
 public:
  uint64_t config_read(const ConfigRead& a) override {
    log.push_back("cfgread " + std::to_string(a.addr) + "/" + std::to_string(a.len));
    return 0x074015ad;
  }
  void config_write(const ConfigWrite& a) override {
    log.push_back("cfgwrite " + std::to_string(a.addr) + "=" + std::to_string(a.value));
  }
  uint64_t bar_read(const BarRead& a) override {
    log.push_back("barread " + std::to_string(a.addr) + (a.memory ? " mem" : " io"));
    return 42;
  }
  void bar_write(const BarWrite& a) override {
    log.push_back("barwrite " + std::to_string(a.addr) + "=" + std::to_string(a.value));
  }
  void sync_sysmem(SyncSysmem&& s) override {
    log.push_back("sysmem " + std::to_string(s.regions.size()));
    sysmem = std::move(s);
  }
  void set_irqfd(SetIrqfd&& f) override {
    log.push_back("irqfd");
    irqfd = std::move(f);
  }
  void device_reset() override { log.push_back("reset"); }
  std::vector<std::string> log;
  SyncSysmem sysmem;
  SetIrqfd irqfd;
};

TEST(ProxyLink, ConfigAndBarRequestsAreAnsweredWithRet) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  RecordingHandler handler;
  qemu.send(3, config_body(0, 0, 4));
  qemu.send(2, config_body(0x10, 0xc000, 4));
  qemu.send(5, bar_body(0xc008, 0, 4, false));
  qemu.send(4, bar_body(0xfebc0000, 7, 4, true));
  qemu.send(7, {});
  qemu.close();
  LinkStatus end = link.serve(handler);
  EXPECT_EQ(end.kind, LinkStatus::Kind::kClosed) << end.message;
  EXPECT_EQ(handler.log, (std::vector<std::string>{"cfgread 0/4", "cfgwrite 16=49152",
                                                   "barread 49160 io", "barwrite 4273733632=7",
                                                   "reset"}));
}

TEST(ProxyLink, RetValuesReachQemu) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  RecordingHandler handler;
  qemu.send(3, config_body(0, 0, 4));
  ProxyMessage m;
  ASSERT_TRUE(link.read_message(&m).ok());
  ASSERT_TRUE(link.dispatch(std::move(m), handler).ok());
  EXPECT_EQ(qemu.ret(), 0x074015adu);
  qemu.send(5, bar_body(0xc008, 0, 4, false));
  ASSERT_TRUE(link.read_message(&m).ok());
  ASSERT_TRUE(link.dispatch(std::move(m), handler).ok());
  EXPECT_EQ(qemu.ret(), 42u);
}

TEST(ProxyLink, SyncSysmemCarriesRegionsAndOwnsTheirDescriptors) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  int a = ::memfd_create("a", MFD_CLOEXEC), b = ::memfd_create("b", MFD_CLOEXEC);
  std::vector<uint8_t> body(192);
  put<uint64_t>(body, 0, 0);
  put<uint64_t>(body, 8, 0x100000);
  put<uint64_t>(body, 64, 0xa0000);
  put<uint64_t>(body, 72, 0x1000);
  put<int64_t>(body, 128, 0);
  put<int64_t>(body, 136, 0x100000);
  qemu.send(0, body, {a, b});
  ::close(a);
  ::close(b);
  ProxyMessage m;
  ASSERT_TRUE(link.read_message(&m).ok());
  auto& s = std::get<SyncSysmem>(m);
  ASSERT_EQ(s.regions.size(), 2u);
  EXPECT_EQ(s.regions[1].gpa, 0x100000u);
  EXPECT_EQ(s.regions[1].size, 0x1000u);
  EXPECT_EQ(s.regions[1].offset, 0x100000);
  EXPECT_TRUE(s.regions[0].fd);
  EXPECT_TRUE(s.regions[1].fd);
}

TEST(ProxyLink, SetIrqfdTakesTwoDescriptors) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  int a = ::memfd_create("a", MFD_CLOEXEC), b = ::memfd_create("b", MFD_CLOEXEC);
  qemu.send(6, {}, {a, b});
  ::close(a);
  ::close(b);
  ProxyMessage m;
  ASSERT_TRUE(link.read_message(&m).ok());
  EXPECT_TRUE(std::get<SetIrqfd>(m).irq);
  EXPECT_TRUE(std::get<SetIrqfd>(m).resample);
}

TEST(ProxyLink, UnknownCommandEndsTheLink) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.send(8, {});
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kMalformed);
}

TEST(ProxyLink, NegativeCommandEndsTheLink) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.send(-1, {});
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kMalformed);
}

TEST(ProxyLink, OversizedBodyEndsTheLinkBeforeItIsRead) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.send(5, {}, {}, 1u << 30);
  ProxyMessage m;
  LinkStatus s = link.read_message(&m);
  EXPECT_EQ(s.kind, LinkStatus::Kind::kMalformed);
  EXPECT_NE(s.message.find("1073741824"), std::string::npos) << s.message;
}

TEST(ProxyLink, WrongBodySizeIsAnsweredWithAnErrorAndTheLinkGoesOn) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.send(5, std::vector<uint8_t>(12));  // BAR_READ with a config body
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kRejected);
  EXPECT_EQ(qemu.ret(), kRetError);
  qemu.send(3, config_body(0, 0, 2));
  EXPECT_TRUE(link.read_message(&m).ok());
  EXPECT_TRUE(std::holds_alternative<ConfigRead>(m));
}

TEST(ProxyLink, BarRequestWithADescriptorIsRejectedAndTheDescriptorClosed) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  int a = ::memfd_create("a", MFD_CLOEXEC);
  qemu.send(4, bar_body(0xc000, 1, 4, false), {a});
  ::close(a);
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kRejected);
  EXPECT_EQ(qemu.ret(), kRetError);
}

TEST(ProxyLink, SyncSysmemWithoutDescriptorsIsRejectedWithoutReply) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  RecordingHandler handler;
  qemu.send(0, std::vector<uint8_t>(192));
  qemu.send(7, {});
  qemu.close();
  EXPECT_EQ(link.serve(handler).kind, LinkStatus::Kind::kClosed);
  EXPECT_EQ(handler.log, std::vector<std::string>{"reset"});
}

TEST(ProxyLink, SetIrqfdWithOneDescriptorIsRejected) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  int a = ::memfd_create("a", MFD_CLOEXEC);
  qemu.send(6, {}, {a});
  ::close(a);
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kRejected);
}

TEST(ProxyLink, RetFromQemuIsDroppedAndTheLinkGoesOn) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  RecordingHandler handler;
  std::vector<uint8_t> v(8);
  qemu.send(1, v);
  qemu.send(7, {});
  qemu.close();
  EXPECT_EQ(link.serve(handler).kind, LinkStatus::Kind::kClosed);
  EXPECT_EQ(handler.log, std::vector<std::string>{"reset"});
}

TEST(ProxyLink, TruncatedMessageIsAnIoError) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.send(3, {}, {}, 12);  // promises 12 bytes, sends none
  qemu.close();
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kIoError);
}

TEST(ProxyLink, CloseBetweenMessagesIsClosed) {
  FakeQemu qemu;
  ProxyLink link(qemu.take_device_end(), test_support::quiet_logger());
  qemu.close();
  ProxyMessage m;
  EXPECT_EQ(link.read_message(&m).kind, LinkStatus::Kind::kClosed);
}

}  // namespace
}  // namespace vmci::pcidev
