// hostpeer's introspection snapshot through a host connection
// (Driver::hostpeer_introspection, which vmci-ctl uses): a snapshot larger
// than one frame arrives whole, in pieces (protocol 2.4).
#include "vmci/introspection.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/frame.h"

namespace vmci::testing {
namespace {

TEST(Introspection, ASnapshotLargerThanAFrameArrivesWholeInPieces) {
  EmbeddedHostpeer hostpeer;
  auto host = connect(hostpeer.socket_path(), Role::kHost);
  ASSERT_TRUE(host);
  constexpr int kHandles = 4000;  // about 100 bytes of JSON each
  for (int i = 0; i < kHandles; ++i) {
    vmci_handle handle = VMCI_INVALID_HANDLE;
    ASSERT_EQ(host->datagram_create_handle(
                  VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &handle),
              VMCI_SUCCESS);
  }
  auto guest = connect(hostpeer.socket_path(), Role::kGuest);
  ASSERT_TRUE(guest);

  std::string json;
  std::string error;
  ASSERT_EQ(host->hostpeer_introspection(&json), VMCI_SUCCESS);
  EXPECT_GT(json.size(), size_t{proto::kMaxIntrospectPiece});  // two pieces at least
  Introspection snap;
  ASSERT_TRUE(parse_introspection(json, &snap, &error)) << error;
  EXPECT_EQ(snap.handles.size(), size_t{kHandles});
  EXPECT_EQ(snap.contexts.size(), 2u);  // the host connection and the guest

  // Again, with something changed in between: a new snapshot, not the
  // rest of the old one.
  guest.reset();
  std::string again;
  ASSERT_EQ(host->hostpeer_introspection(&again), VMCI_SUCCESS);
  ASSERT_TRUE(parse_introspection(again, &snap, &error)) << error;
  EXPECT_EQ(snap.contexts.size(), 1u);
  EXPECT_EQ(snap.handles.size(), size_t{kHandles});

  // A guest may not ask.
  auto other = connect(hostpeer.socket_path(), Role::kGuest);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->hostpeer_introspection(&again), VMCI_ERROR_NO_ACCESS);
}

// The library says counted-deliveries in its hello (protocol 2.5), so both
// its connections acknowledge by count, and a datagram whose callback ran
// stops counting as pending without a `delivered` frame.
TEST(Introspection, TheLibrarysConnectionsAcknowledgeDeliveriesByCount) {
  EmbeddedHostpeer hostpeer;
  auto host = connect(hostpeer.socket_path(), Role::kHost);
  ASSERT_TRUE(host);
  auto guest = connect(hostpeer.socket_path(), Role::kGuest);
  ASSERT_TRUE(guest);
  std::promise<void> ran;
  vmci_handle mine = VMCI_INVALID_HANDLE, service = VMCI_INVALID_HANDLE;
  ASSERT_EQ(guest->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0,
                [&](vmci_datagram*) {
                  ran.set_value();
                  return 0;
                },
                &mine),
            VMCI_SUCCESS);
  ASSERT_EQ(host->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &service),
            VMCI_SUCCESS);
  const vmci_datagram dg{mine, service, 0};
  ASSERT_EQ(host->datagram_send(&dg), 24);
  ASSERT_EQ(ran.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);

  Introspection snap;
  std::string error;
  auto the_guest = [&]() -> const ContextInfo& {
    return snap.contexts[0].role == Role::kGuest ? snap.contexts[0] : snap.contexts[1];
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::string json;
    ASSERT_EQ(host->hostpeer_introspection(&json), VMCI_SUCCESS);
    ASSERT_TRUE(parse_introspection(json, &snap, &error)) << error;
    ASSERT_EQ(snap.contexts.size(), 2u);
    if (the_guest().pending_datagrams == 0 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const ContextInfo& c : snap.contexts) {
    EXPECT_TRUE(c.deliveries_counted) << "connection " << c.connection;
    EXPECT_EQ(c.pending_datagrams, 0u) << "connection " << c.connection;
  }
  EXPECT_EQ(the_guest().datagrams_received, 1u);
}

}  // namespace
}  // namespace vmci::testing
