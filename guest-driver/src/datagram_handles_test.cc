#include "datagram_handles.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace vmci::guest::internal {
namespace {

const DatagramCallback kNoop = [](vmci_datagram*) { return 0; };

TEST(DatagramHandles, DynamicIdsStartAt1024AndIncrease) {
  DatagramHandles handles;
  vmci_handle a, b;
  ASSERT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &a), VMCI_SUCCESS);
  ASSERT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &b), VMCI_SUCCESS);
  EXPECT_EQ(a.context, 16u);
  EXPECT_EQ(a.resource, 1024u);
  EXPECT_EQ(b.resource, 1025u);
}

TEST(DatagramHandles, TheTableIsBoundedAndHasRoomAgainOnceOneGoes) {
  DatagramHandles handles;
  vmci_handle h;
  for (size_t i = 0; i < DatagramHandles::kMaxGuestEntries; ++i) {
    ASSERT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h), VMCI_SUCCESS) << i;
  }
  EXPECT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(handles.claim(16, VMCI_INVALID_ID, &h), VMCI_ERROR_NO_RESOURCES);
  ASSERT_EQ(handles.remove(VMCI_MAKE_HANDLE(16, 1024), false), VMCI_SUCCESS);
  EXPECT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h), VMCI_SUCCESS);
}

TEST(DatagramHandles, ExplicitReservedIdIsAllowed) {
  DatagramHandles handles;
  vmci_handle h;
  ASSERT_EQ(handles.create(16, 7, 0, 0, kNoop, &h), VMCI_SUCCESS);
  EXPECT_EQ(h.resource, 7u);
}

TEST(DatagramHandles, DuplicateIsDuplicateEntryAsOnFreeBSD) {
  DatagramHandles handles;
  vmci_handle h;
  ASSERT_EQ(handles.create(16, 2000, 0, 0, kNoop, &h), VMCI_SUCCESS);
  EXPECT_EQ(handles.create(16, 2000, 0, 0, kNoop, &h), VMCI_ERROR_DUPLICATE_ENTRY);
  // An any-context handle with the same id collides too.
  EXPECT_EQ(handles.create(VMCI_INVALID_ID, 2000, 0, 0, kNoop, &h), VMCI_ERROR_DUPLICATE_ENTRY);
}

TEST(DatagramHandles, DynamicIdsSkipTakenIds) {
  DatagramHandles handles;
  vmci_handle h;
  ASSERT_EQ(handles.create(16, 1024, 0, 0, kNoop, &h), VMCI_SUCCESS);
  ASSERT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h), VMCI_SUCCESS);
  EXPECT_EQ(h.resource, 1025u);
}

TEST(DatagramHandles, Item23_AnyContextHandleMatchesEveryContext) {
  DatagramHandles handles;
  vmci_handle h;
  ASSERT_EQ(handles.create(VMCI_INVALID_ID, 3000, VMCI_FLAG_ANYCID_DG_HND, 0, kNoop, &h),
            VMCI_SUCCESS);
  EXPECT_EQ(h.context, VMCI_INVALID_ID);
  EXPECT_NE(handles.lookup(VMCI_MAKE_HANDLE(16, 3000)), nullptr);
  EXPECT_NE(handles.lookup(VMCI_MAKE_HANDLE(99, 3000)), nullptr);
  EXPECT_EQ(handles.lookup(VMCI_MAKE_HANDLE(16, 3001)), nullptr);
}

TEST(DatagramHandles, LookupWithInvalidContextDoesNotMatchAContextHandle) {
  DatagramHandles handles;
  vmci_handle h;
  ASSERT_EQ(handles.create(16, 3000, 0, 0, kNoop, &h), VMCI_SUCCESS);
  EXPECT_EQ(handles.lookup(VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 3000)), nullptr);
  EXPECT_EQ(handles.lookup(VMCI_MAKE_HANDLE(17, 3000)), nullptr);
}

TEST(DatagramHandles, RemoveUnknownIsNotFound) {
  DatagramHandles handles;
  EXPECT_EQ(handles.remove(VMCI_MAKE_HANDLE(16, 1024), false), VMCI_ERROR_NOT_FOUND);
  vmci_handle h;
  handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h);
  EXPECT_EQ(handles.remove(h, false), VMCI_SUCCESS);
  EXPECT_EQ(handles.remove(h, false), VMCI_ERROR_NOT_FOUND);
}

TEST(DatagramHandles, RemoveWaitsForARunningCallback) {
  DatagramHandles handles;
  vmci_handle h;
  handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &h);
  handles.start_callback(handles.lookup(h));
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    handles.remove(h, false);
    removed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(removed);
  handles.finish_callback();
  remover.join();
  EXPECT_TRUE(removed);
}

// Item 35 (FreeBSD): a doorbell's handle is claimed in the same table, so a
// datagram handle never shares it, and it receives no datagrams.
TEST(DatagramHandles, Item35_ClaimedHandlesShareTheTableButTakeNoDatagrams) {
  DatagramHandles handles;
  vmci_handle doorbell, datagram;
  ASSERT_EQ(handles.claim(16, VMCI_INVALID_ID, &doorbell), VMCI_SUCCESS);
  EXPECT_EQ(doorbell.resource, 1024u);
  ASSERT_EQ(handles.create(16, VMCI_INVALID_ID, 0, 0, kNoop, &datagram), VMCI_SUCCESS);
  EXPECT_EQ(datagram.resource, 1025u) << "a dynamic id skips the claimed one";
  vmci_handle h;
  EXPECT_EQ(handles.create(16, 1024, 0, 0, kNoop, &h), VMCI_ERROR_DUPLICATE_ENTRY);
  EXPECT_EQ(handles.claim(16, 1025, &h), VMCI_ERROR_DUPLICATE_ENTRY);
  EXPECT_EQ(handles.lookup(doorbell), nullptr);
  EXPECT_EQ(handles.remove(doorbell, false), VMCI_ERROR_NOT_FOUND) << "not a datagram handle";
  EXPECT_EQ(handles.release(datagram), VMCI_ERROR_NOT_FOUND) << "not a claim";
  EXPECT_EQ(handles.release(doorbell), VMCI_SUCCESS);
  EXPECT_EQ(handles.create(16, 1024, 0, 0, kNoop, &h), VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci::guest::internal
