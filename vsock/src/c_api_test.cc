// The C API (vmci/vmci_vsock.h) from a C99 guest (c_api_guest.c) against a
// host written with the C++ API on an embedded hostpeer.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "c_api_guest.h"
#include "test_world.h"
#include "vmci/host/hostpeer.h"
#include "vmci/vmci_hostpeer.h"
#include "vmci/vsock/datagram_socket.h"
#include "vmci/vsock/transport.h"

namespace vmci::vsock {
namespace {

using namespace std::chrono_literals;

class VsockCApi : public ::testing::Test {
 protected:
  void SetUp() override {
    std::error_code ec;
    vsock_ = Transport::open(*host_, {}, ec);
    ASSERT_TRUE(vsock_) << ec.message();
  }
  void TearDown() override {
    vmci_hostpeer_disconnect();
    vsock_.reset();
  }
  const char* socket() const { return world_.socket_path().c_str(); }

  TestWorld world_;
  Endpoint* host_ = &world_.host();
  std::shared_ptr<Transport> vsock_;
};

TEST_F(VsockCApi, ACGuestsGreetingComesBack) {
  std::error_code ec;
  auto listener = vsock_->listen(1234, 1, ec);
  std::thread echo([&] {
    auto s = listener->accept(10s, ec);
    ASSERT_TRUE(s);
    char buf[64];
    std::error_code e;
    const size_t n = s->read_some(buf, sizeof buf, 10s, e);
    s->write_all(buf, n, e);
    s->read_some(buf, 1, 10s, e);  // until the guest closes
  });
  EXPECT_EQ(c_guest_echo(socket(), 1234), 0);
  echo.join();
}

TEST_F(VsockCApi, ErrorsAreErrno) {
  EXPECT_EQ(c_guest_connect_error(socket(), 4321), ECONNRESET);
}

TEST_F(VsockCApi, ADatagramAndItsAnswer) {
  std::error_code ec;
  auto socket_ = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  ASSERT_TRUE(socket_);
  std::thread answer([&] {
    char buf[16];
    Address from;
    std::error_code e;
    if (socket_->receive_from(buf, sizeof buf, &from, 10s, e) == 4) {
      socket_->send_to("pong", 4, from, e);
    }
  });
  EXPECT_EQ(c_guest_datagram(socket(), 4000), 0);
  answer.join();
}

}  // namespace
}  // namespace vmci::vsock
