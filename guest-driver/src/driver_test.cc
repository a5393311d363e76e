// The driver against a scripted hostpeer, for what the real one never
// sends: a CTX_ID_UPDATE to VMCI_INVALID_ID, and a GET_CONTEXT_ID answer
// that is an error code (spec §1.5, item 32).
#include "vmci/guest/driver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "posix_io.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/notify_memory.h"

namespace vmci::guest {
namespace {

// Accepts one peer, welcomes it as context 60, answers every datagram
// request with `answer`, and sends deliveries on request.
class ScriptedHostpeer {
 public:
  explicit ScriptedHostpeer(int64_t answer) : answer_(answer) {
    char tmpl[] = "/tmp/vmci-driver-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedHostpeer() {
    ::shutdown(listener_, SHUT_RDWR);
    if (peer_ >= 0) ::shutdown(peer_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    if (peer_ >= 0) ::close(peer_);
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }

  void deliver_context_event(vmci_event_type event, vmci_id cid, uint32_t delivery_id) {
    deliver_raw(proto::make_context_event(60, event, cid), delivery_id);
  }

  void deliver_raw(const std::vector<uint8_t>& dg, uint32_t delivery_id = 1) {
    connected_future_.wait();
    const auto frame =
        proto::encode_frame(proto::FrameType::kDeliver, delivery_id, std::span<const uint8_t>(dg));
    std::lock_guard lock(write_mutex_);
    internal::write_all(peer_, frame.data(), frame.size());
  }

 private:
  // A welcome carries the connection's notify memory: a sealed memfd.
  void send_with_notify_memory(const std::vector<uint8_t>& frame) {
    const int memory = ::memfd_create("notify", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    ASSERT_EQ(::ftruncate(memory, proto::kNotifyMemorySize), 0);
    ASSERT_EQ(::fcntl(memory, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    iovec iov{const_cast<uint8_t*>(frame.data()), frame.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &memory, sizeof memory);
    ASSERT_EQ(::sendmsg(peer_, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
    ::close(memory);
  }

  void serve() {
    peer_ = ::accept(listener_, nullptr, nullptr);
    if (peer_ < 0) return;
    proto::FrameHeader h;
    std::vector<uint8_t> body;
    auto read_frame = [&] {
      if (!internal::read_exact(peer_, &h, sizeof h)) return false;
      body.resize(h.body_size);
      return internal::read_exact(peer_, body.data(), body.size());
    };
    if (!read_frame()) return;  // hello
    const proto::WelcomeBody welcome{proto::kProtocolMajor, proto::kProtocolMinor, VMCI_SUCCESS, 60,
                                     0};
    const auto frame = proto::encode_frame(proto::FrameType::kWelcome, h.request_id, welcome, {}, 1);
    send_with_notify_memory(frame);
    connected_.set_value();
    while (read_frame()) {
      if (h.type != static_cast<uint16_t>(proto::FrameType::kDatagram)) continue;
      const proto::ResultBody result{answer_, VMCI_INVALID_HANDLE};
      const auto reply = proto::encode_frame(proto::FrameType::kResult, h.request_id, result);
      std::lock_guard lock(write_mutex_);
      internal::write_all(peer_, reply.data(), reply.size());
    }
  }

  int64_t answer_;
  std::string dir_, path_;
  int listener_ = -1;
  int peer_ = -1;
  std::promise<void> connected_;
  std::shared_future<void> connected_future_ = connected_.get_future().share();
  std::mutex write_mutex_;
  std::thread thread_;
};

// Waits until the driver has run `n` event callbacks.
class EventCounter {
 public:
  EventCallback callback() {
    return [this](vmci_id, vmci_event_data*) {
      std::lock_guard lock(mutex_);
      ++count_;
      changed_.notify_all();
    };
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [&] { return count_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int count_ = 0;
};

TEST(DriverScripted, Item32_CtxIdUpdateToInvalidIdIsIgnored) {
  ScriptedHostpeer hostpeer(60);
  int status;
  auto vm = Driver::connect({.socket_path = hostpeer.path()}, &status);
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->get_context_id(), 60u);
  EventCounter events;
  vmci_id sub;
  ASSERT_EQ(vm->event_subscribe(VMCI_EVENT_CTX_ID_UPDATE, events.callback(), &sub), VMCI_SUCCESS);
  hostpeer.deliver_context_event(VMCI_EVENT_CTX_ID_UPDATE, VMCI_INVALID_ID, 1);
  ASSERT_TRUE(events.wait_for(1));
  EXPECT_EQ(vm->get_context_id(), 60u) << "an update to VMCI_INVALID_ID changes nothing";
  hostpeer.deliver_context_event(VMCI_EVENT_CTX_ID_UPDATE, 77, 2);
  ASSERT_TRUE(events.wait_for(2));
  EXPECT_EQ(vm->get_context_id(), 77u);
}

TEST(DriverScripted, Item32_GetContextIdAnswerIsCachedVerbatim) {
  ScriptedHostpeer hostpeer(VMCI_ERROR_GENERIC);
  int status;
  auto vm = Driver::connect({.socket_path = hostpeer.path()}, &status);
  ASSERT_TRUE(vm);
  // No error check, as the drivers: the raw answer becomes the id.
  EXPECT_EQ(vm->get_context_id(), static_cast<vmci_id>(VMCI_ERROR_GENERIC));
  EXPECT_EQ(vm->get_context_id(), static_cast<vmci_id>(VMCI_ERROR_GENERIC));
}

TEST(DriverScripted, AMalformedDeliveryEndsTheConnectionWithAReason) {
  ScriptedHostpeer hostpeer(60);
  int status;
  auto vm = Driver::connect({.socket_path = hostpeer.path()}, &status);
  ASSERT_TRUE(vm);
  auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(60, 1), VMCI_MAKE_HANDLE(2, 1),
                                 std::vector<uint8_t>(8));
  const uint64_t lie = 1000;  // more payload than the frame carries
  std::memcpy(dg.data() + 16, &lie, sizeof lie);
  hostpeer.deliver_raw(dg);
  for (int i = 0; i < 500 && vm->connected(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(vm->connected());
  EXPECT_NE(vm->close_reason().find("malformed"), std::string::npos) << vm->close_reason();
  EXPECT_EQ(vm->sync(), VMCI_ERROR_UNAVAILABLE);
}

TEST(DriverScripted, MalformedEventsAreDropped) {
  ScriptedHostpeer hostpeer(60);
  int status;
  auto vm = Driver::connect({.socket_path = hostpeer.path()}, &status);
  ASSERT_TRUE(vm);
  EventCounter events;
  vmci_id sub;
  ASSERT_EQ(vm->event_subscribe(VMCI_EVENT_CTX_REMOVED, events.callback(), &sub), VMCI_SUCCESS);
  hostpeer.deliver_context_event(VMCI_EVENT_MEM_ACCESS_ON, 5, 1);  // not deliverable: dropped
  hostpeer.deliver_context_event(VMCI_EVENT_CTX_REMOVED, 5, 2);
  ASSERT_TRUE(events.wait_for(1));
  EXPECT_FALSE(events.wait_for(2));
}

}  // namespace
}  // namespace vmci::guest
