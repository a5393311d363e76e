// vSockets across processes over the daemon: a host connection in this
// process serves a listener; guests in other processes connect, and are
// killed at every step of the handshake.
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <thread>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/vsock/errors.h"
#include "vmci/vsock/transport.h"

namespace vmci::testing {
namespace {

using namespace std::chrono_literals;
using vsock::make_error;

// A real guest (this process, over the daemon) connects and swaps a byte.
void a_guest_gets_through(const std::string& socket, vsock::Listener& listener) {
  auto guest = connect(socket, proto::Role::kGuest);
  std::error_code ec;
  auto vsock = vsock::Transport::open(*guest, {}, ec);
  ASSERT_TRUE(vsock) << ec.message();
  auto client = vsock->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  ASSERT_TRUE(client) << ec.message();
  auto server = listener.accept(5s, ec);
  ASSERT_TRUE(server) << ec.message();
  client->write_all("x", 1, ec);
  char byte = 0;
  EXPECT_EQ(server->read_some(&byte, 1, 5s, ec), 1u);
  EXPECT_EQ(byte, 'x');
}

TEST(VsockProcesses, AGuestKilledAtEveryStepOfTheHandshakeLeavesTheHostServing) {
  Daemon daemon;
  auto host = connect(daemon.socket_path(), proto::Role::kHost);
  vsock::TransportOptions options;
  options.pending_timeout = 200ms;
  options.log = [](const std::string&) {};
  std::error_code ec;
  auto vsock = vsock::Transport::open(*host, options, ec);
  ASSERT_TRUE(vsock) << ec.message();
  auto listener = vsock->listen(1234, 1, ec);  // one half-open child fills it
  for (int step = 0; step <= 4; ++step) {
    SCOPED_TRACE("killed at step " + std::to_string(step));
    ChildProcess peer({VMCI_VSOCK_HANDSHAKE_PEER_BIN, daemon.socket_path(), "1234",
                       std::to_string(step)},
                      ChildOptions::with_pipes());
    ASSERT_EQ(peer.read_line(10000), "at " + std::to_string(step));
    if (step >= 3) {
      // The server attached at the OFFER: the connection was established.
      // Its guest dies: the end of the stream, and EPIPE for a write.
      auto server = listener->accept(5s, ec);
      ASSERT_TRUE(server) << ec.message();
      peer.signal(SIGKILL);
      peer.wait(5000);
      // The end of the stream. (The byte a step-4 guest wrote may come
      // first, if the host read it before hostpeer saw the guest go.)
      std::string got;
      std::error_code rec;
      for (char byte; server->read_some(&byte, 1, 5s, rec) == 1;) got += byte;
      EXPECT_FALSE(rec) << rec.message();
      EXPECT_TRUE(got.empty() || got == "!") << got;
      EXPECT_EQ(server->peer_shutdown(), vsock::kShutdownMask);
      EXPECT_EQ(server->write_some("y", 1, 0ms, rec), 0u);
      EXPECT_EQ(rec, make_error(EPIPE));
    } else {
      peer.signal(SIGKILL);
      peer.wait(5000);
      EXPECT_FALSE(listener->accept(50ms, ec));
      std::this_thread::sleep_for(options.pending_timeout);  // a half-open child expires
    }
    a_guest_gets_through(daemon.socket_path(), *listener);
    for (int i = 0; i < 200 && vsock->connection_count() > 0; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_EQ(vsock->connection_count(), 0u);
  }
  EXPECT_TRUE(daemon.process().running());
}

}  // namespace
}  // namespace vmci::testing
