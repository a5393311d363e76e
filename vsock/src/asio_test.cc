// vSockets streams driven by Boost.Asio: an echo service on an embedded
// host endpoint, written as a device proxy would write it, and a guest.
#include "vmci/vsock/asio.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <thread>

#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "test_world.h"

namespace vmci::vsock {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

// Echoes whatever a connection sends until it ends.
class EchoSession : public std::enable_shared_from_this<EchoSession> {
 public:
  explicit EchoSession(asio::stream s) : stream_(std::move(s)) {}
  void start() { read(); }

 private:
  void read() {
    stream_.async_read_some(net::buffer(buf_), [self = shared_from_this()](
                                                   boost::system::error_code ec, size_t n) {
      if (ec) return;  // eof, or the guest left
      net::async_write(self->stream_, net::buffer(self->buf_, n),
                       [self](boost::system::error_code wec, size_t) {
                         if (!wec) self->read();
                       });
    });
  }
  asio::stream stream_;
  char buf_[4096];
};

class VsockAsio : public ::testing::Test {
 protected:
  void SetUp() override {
    std::error_code ec;
    host_vsock_ = Transport::open(world_.host(), {}, ec);
    guest_vsock_ = Transport::open(*guest_, {}, ec);
    ASSERT_TRUE(host_vsock_ && guest_vsock_);
  }
  void TearDown() override {
    guest_vsock_.reset();
    host_vsock_.reset();
  }

  TestWorld world_;
  std::unique_ptr<guest::Driver> guest_ = world_.connect_guest();
  std::shared_ptr<Transport> host_vsock_, guest_vsock_;
};

TEST_F(VsockAsio, AnEchoServiceOnAnIoContextServesGuestsUntilTheyLeave) {
  net::io_context io;
  std::error_code ec;
  asio::acceptor acceptor(io.get_executor(), host_vsock_->listen(1234, 8, ec));
  int accepted = 0;
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](boost::system::error_code aec, asio::stream s) {
      if (aec) return;
      ++accepted;
      std::make_shared<EchoSession>(std::move(s))->start();
      accept_next();
    });
  };
  accept_next();
  std::thread guests([&] {
    for (int g = 0; g < 3; ++g) {
      std::error_code cec;
      auto s = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, cec);
      ASSERT_TRUE(s) << cec.message();
      // Synchronous Asio calls on a stream work too.
      asio::stream client(io.get_executor(), std::move(s));
      std::vector<char> out(100000), in(out.size());
      for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 31 + g);
      net::write(client, net::buffer(out));
      net::read(client, net::buffer(in));
      EXPECT_EQ(in, out);
    }
    io.post([&] { acceptor.close(); });
  });
  io.run_for(30s);  // returns once the acceptor closed and every session ended
  guests.join();
  EXPECT_EQ(accepted, 3);
  EXPECT_TRUE(io.stopped());
}

TEST_F(VsockAsio, ClosingAStreamAbortsItsPendingRead) {
  net::io_context io;
  std::error_code ec;
  auto listener = host_vsock_->listen(1234, 1, ec);
  auto client = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  asio::stream server(io.get_executor(), listener->accept(5s, ec));
  char byte;
  boost::system::error_code got;
  server.async_read_some(net::buffer(&byte, 1),
                         [&](boost::system::error_code e, size_t) { got = e; });
  io.run_for(50ms);
  EXPECT_FALSE(io.stopped());  // the read waits, holding work
  server.close();
  io.run_for(5s);
  EXPECT_EQ(got, net::error::operation_aborted);
}

TEST_F(VsockAsio, ThePeersCloseIsEof) {
  net::io_context io;
  std::error_code ec;
  auto listener = guest_vsock_->listen(5000, 1, ec);
  auto client = host_vsock_->connect({guest_->get_context_id(), 5000}, ec);
  asio::stream server(io.get_executor(), listener->accept(5s, ec));
  char byte;
  boost::system::error_code got;
  server.async_read_some(net::buffer(&byte, 1),
                         [&](boost::system::error_code e, size_t) { got = e; });
  io.run_for(20ms);
  client->close();
  io.run_for(5s);
  EXPECT_EQ(got, net::error::eof);
}

}  // namespace
}  // namespace vmci::vsock
