// What each side sees when the other dies: the daemon killed and restarted
// under a host connection that reconnects and a guest that does not, and an
// embedded proxy's process (examples/echo-device) killed under its guest.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/message.h"

namespace vmci::testing {
namespace {

using guest::ConnectionChange;
using guest::Driver;
using std::chrono::milliseconds;

// The connection changes a Driver reported, waited for with a timeout.
class ChangeLog {
 public:
  guest::ConnectionCallback callback() {
    return [this](const ConnectionChange& change) {
      std::lock_guard lock(mutex_);
      changes_.push_back(change);
      changed_.notify_all();
    };
  }
  // True once `n` changes came within `timeout`.
  bool wait_for(size_t n, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return changes_.size() >= n; });
  }
  std::vector<ConnectionChange> changes() {
    std::lock_guard lock(mutex_);
    return changes_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<ConnectionChange> changes_;
};

std::unique_ptr<ChildProcess> start_daemon(const std::string& socket) {
  auto daemon = std::make_unique<ChildProcess>(
      std::vector<std::string>{VMCI_HOSTPEER_BIN, "--socket", socket, "--log-level", "warn"},
      ChildOptions{});
  for (int i = 0; i < 400 && !socket_answers(socket); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  return daemon;
}

TEST(ConnectionLifetime, DaemonKilledAndRestarted_HostReconnectsWithItsHandlesAGuestIsToldOnce) {
  TempDir dir;
  const std::string socket = dir.path() + "/hostpeer.sock";
  auto daemon = start_daemon(socket);
  ASSERT_TRUE(socket_answers(socket));

  int status;
  std::string error;
  guest::ConnectOptions host_options{.socket_path = socket, .role = Role::kHost};
  host_options.reconnect = {.enabled = true, .first_delay = milliseconds(20),
                            .max_delay = milliseconds(200)};
  auto host = Driver::connect(host_options, &status, &error);
  ASSERT_TRUE(host) << error;
  ChangeLog host_log;
  host->set_connection_callback(host_log.callback());
  std::mutex got_mutex;
  std::condition_variable got_changed;
  std::vector<std::string> got;
  int rings = 0;
  vmci_handle service;
  ASSERT_EQ(host->datagram_create_handle(4242, 0, 0, [&](vmci_datagram* dg) {
              auto payload = DatagramView(dg).payload();
              std::lock_guard lock(got_mutex);
              got.emplace_back(payload.begin(), payload.end());
              got_changed.notify_all();
              return 0;
            }, &service), VMCI_SUCCESS);
  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0, [&] {
              std::lock_guard lock(got_mutex);
              ++rings;
              got_changed.notify_all();
            }), VMCI_SUCCESS);

  auto old_guest = connect(socket, Role::kGuest);
  ASSERT_TRUE(old_guest);
  ChangeLog guest_log;
  old_guest->set_connection_callback(guest_log.callback());

  daemon->signal(SIGKILL);
  daemon->wait(5000);
  ASSERT_TRUE(host_log.wait_for(1, milliseconds(5000)));
  ASSERT_TRUE(guest_log.wait_for(1, milliseconds(5000)));
  EXPECT_EQ(host_log.changes()[0].kind, ConnectionChange::Kind::kLost);
  EXPECT_EQ(guest_log.changes()[0].kind, ConnectionChange::Kind::kLost);
  EXPECT_NE(guest_log.changes()[0].reason, "");
  EXPECT_FALSE(old_guest->connected());
  EXPECT_EQ(old_guest->sync(), VMCI_ERROR_UNAVAILABLE);

  daemon = start_daemon(socket);  // replaces the stale socket
  ASSERT_TRUE(host_log.wait_for(2, milliseconds(10000))) << "the host reconnected";
  EXPECT_EQ(host_log.changes()[1].kind, ConnectionChange::Kind::kReconnected);
  EXPECT_EQ(host_log.changes()[1].reason, "") << "everything was re-created";
  EXPECT_TRUE(host->connected());

  // A new guest reaches the host's datagram handle and doorbell as before.
  auto guest = connect(socket, Role::kGuest);
  ASSERT_TRUE(guest);
  vmci_handle me;
  ASSERT_EQ(guest->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                          &me),
            VMCI_SUCCESS);
  PayloadWriter hello;
  hello.text("after restart");
  Datagram dg(service, me, hello.bytes());
  EXPECT_EQ(guest->datagram_send(dg.get()), static_cast<int>(dg.size()));
  EXPECT_EQ(guest->doorbell_notify(bell, 0), VMCI_SUCCESS);
  {
    std::unique_lock lock(got_mutex);
    EXPECT_TRUE(got_changed.wait_for(lock, milliseconds(5000),
                                     [&] { return !got.empty() && rings > 0; }));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], "after restart");
  }
  // The old guest stays gone and was told once; the program's own close
  // tells nobody.
  EXPECT_EQ(guest_log.changes().size(), 1u);
  guest.reset();
  host.reset();
  EXPECT_EQ(host_log.changes().size(), 2u);
  daemon->signal(SIGTERM);
  daemon->wait(5000);
}

TEST(ConnectionLifetime, WithoutReconnectAHostIsToldOnceAndStaysDown) {
  TempDir dir;
  const std::string socket = dir.path() + "/hostpeer.sock";
  auto daemon = start_daemon(socket);
  auto host = connect(socket, Role::kHost);
  ASSERT_TRUE(host);
  ChangeLog log;
  host->set_connection_callback(log.callback());
  daemon->signal(SIGTERM);  // a clean stop says goodbye: still a loss to the host
  daemon->wait(5000);
  ASSERT_TRUE(log.wait_for(1, milliseconds(5000)));
  daemon = start_daemon(socket);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(log.changes().size(), 1u);
  EXPECT_FALSE(host->connected());
  daemon->signal(SIGTERM);
  daemon->wait(5000);
}

TEST(ConnectionLifetime, EmbeddedProxyKilled_ItsGuestIsToldAndItsCallsFailAtOnce) {
  TempDir dir;
  const std::string socket = dir.path() + "/proxy.sock";
  ChildProcess proxy({VMCI_ECHO_DEVICE_BIN, socket}, ChildOptions::with_pipes());
  ASSERT_NE(proxy.read_line(10000).find("serving on"), std::string::npos);
  auto guest = connect(socket, Role::kGuest);
  ASSERT_TRUE(guest);
  ChangeLog log;
  guest->set_connection_callback(log.callback());
  std::unique_ptr<QueuePair> qp;
  vmci_handle h = VMCI_INVALID_HANDLE;
  ASSERT_GE(guest->qpair_alloc(&qp, &h, 4096, 4096, VMCI_HOST_CONTEXT_ID, 0, 0), VMCI_SUCCESS);
  std::thread waiter([&] {
    // Nothing will come: the wait ends when the proxy goes.
    EXPECT_EQ(qp->wait(QueuePair::Wait::kData, milliseconds(20000)),
              VMCI_ERROR_QUEUEPAIR_NOTATTACHED);
  });
  const auto start = std::chrono::steady_clock::now();
  proxy.signal(SIGKILL);
  proxy.wait(5000);
  ASSERT_TRUE(log.wait_for(1, milliseconds(5000)));
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(5000));
  EXPECT_EQ(log.changes()[0].kind, ConnectionChange::Kind::kLost);
  EXPECT_EQ(guest->sync(), VMCI_ERROR_UNAVAILABLE);
  EXPECT_EQ(guest->get_context_id() == VMCI_INVALID_ID || !guest->connected(), true);
  EXPECT_EQ(guest->qpair_detach(&qp), VMCI_ERROR_UNAVAILABLE);
}

}  // namespace
}  // namespace vmci::testing
