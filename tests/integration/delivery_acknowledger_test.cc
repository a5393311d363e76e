// The guest library's DeliveryAcknowledger against a real hostpeer: what a
// connection's delivery thread acknowledges before the connection is bound
// (a reconnect's first deliveries) waits, in order, and reaches hostpeer at
// bind(); acknowledgements for a connection that is gone go nowhere.
#include "delivery_acknowledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "connection.h"
#include "processes.h"
#include "vmci/introspection.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/frame.h"

namespace vmci::testing {
namespace {

using guest::internal::Connection;
using guest::internal::DeliveryAcknowledger;

// A guest connection whose deliveries are acknowledged through `acks` as
// they come (on its reader thread, standing in for the delivery thread).
class AcknowledgingGuest {
 public:
  AcknowledgingGuest(const std::string& socket, std::shared_ptr<DeliveryAcknowledger> acks,
                     uint8_t features)
      : acks_(std::move(acks)) {
    guest::ConnectOptions options;
    options.socket_path = socket;
    options.role = proto::Role::kGuest;
    Connection::Sink sink;
    sink.deliver = [this](uint32_t id, std::vector<uint8_t>) {
      acks_->acknowledge(id);
      std::lock_guard lock(mutex_);
      ++delivered_;
      changed_.notify_all();
    };
    sink.closed = [](const std::string&) {};
    int status;
    std::string error;
    connection_ = Connection::open(options, std::move(sink), &status, &error, features);
    open_error_ = error;
  }
  bool connected() const { return connection_ != nullptr; }
  const std::string& open_error() const { return open_error_; }
  std::shared_ptr<Connection> connection() const { return connection_; }
  vmci_id cid() const { return connection_->context_id(); }
  bool wait_delivered(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return delivered_ >= n; });
  }

 private:
  std::shared_ptr<DeliveryAcknowledger> acks_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int delivered_ = 0;
  std::string open_error_;
  std::shared_ptr<Connection> connection_;  // last: its reader thread ends first
};

bool pending_becomes(EmbeddedHostpeer& hostpeer, uint64_t n) {
  for (int i = 0; i < 500; ++i) {
    if (hostpeer->stats().pending_datagrams == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

void send_to(Endpoint& host, vmci_handle src, vmci_id cid, int count) {
  const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(cid, 1), src, std::vector<uint8_t>(16, 1));
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(host.datagram_send(reinterpret_cast<const vmci_datagram*>(dg.data())),
              static_cast<int>(dg.size()));
  }
}

class DeliveryAcknowledgerTest : public ::testing::TestWithParam<uint8_t> {};

TEST_P(DeliveryAcknowledgerTest, AcknowledgementsBeforeBindWaitAndReachHostpeerAtBind) {
  EmbeddedHostpeer hostpeer;
  auto host = hostpeer->connect_host();
  vmci_handle src = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &src),
            VMCI_SUCCESS);
  auto acks = std::make_shared<DeliveryAcknowledger>();
  AcknowledgingGuest guest(hostpeer.socket_path(), acks, GetParam());
  ASSERT_TRUE(guest.connected()) << guest.open_error();
  // The way of acknowledging this instance is about was agreed on.
  const Introspection snapshot = hostpeer->introspect();
  const auto me = std::find_if(snapshot.contexts.begin(), snapshot.contexts.end(),
                               [&](const auto& c) { return c.cid == guest.cid(); });
  ASSERT_NE(me, snapshot.contexts.end());
  EXPECT_EQ(me->deliveries_counted, GetParam() != 0);
  send_to(*host, src, guest.cid(), 3);
  ASSERT_TRUE(guest.wait_delivered(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(hostpeer->stats().pending_datagrams, 3u);  // taken, not yet acknowledged
  acks->bind(guest.connection());
  EXPECT_TRUE(pending_becomes(hostpeer, 0));
  send_to(*host, src, guest.cid(), 2);  // bound: acknowledged as they come
  ASSERT_TRUE(guest.wait_delivered(5));
  EXPECT_TRUE(pending_becomes(hostpeer, 0));
}

// The acknowledger does not keep its connection: a connection that was
// replaced goes when its owner lets it go, and what is acknowledged to it
// afterwards goes nowhere (never to its successor).
TEST_P(DeliveryAcknowledgerTest, AConnectionThatIsGoneIsNotKeptAndTakesNothing) {
  EmbeddedHostpeer hostpeer;
  auto acks = std::make_shared<DeliveryAcknowledger>();
  std::weak_ptr<Connection> old;
  {
    AcknowledgingGuest guest(hostpeer.socket_path(), acks, GetParam());
    ASSERT_TRUE(guest.connected()) << guest.open_error();
    acks->bind(guest.connection());
    old = guest.connection();
  }
  EXPECT_TRUE(old.expired());
  acks->acknowledge(7);  // nothing to tell, nothing breaks
  EXPECT_EQ(hostpeer->stats().pending_datagrams, 0u);
}

INSTANTIATE_TEST_SUITE_P(ByFrameAndByCount, DeliveryAcknowledgerTest,
                         ::testing::Values(uint8_t{0}, uint8_t{proto::kFeatureCountedDeliveries}),
                         [](const auto& info) {
                           return info.param == 0 ? std::string("DeliveredFrames")
                                                  : std::string("CountedInNotifyMemory");
                         });

}  // namespace
}  // namespace vmci::testing
