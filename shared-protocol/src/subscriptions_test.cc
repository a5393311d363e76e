#include "vmci/proto/subscriptions.h"

#include <gtest/gtest.h>

namespace vmci::proto {
namespace {

const EventCallback kNoop = [](vmci_id, vmci_event_data*) {};


TEST(EventSubscriptions, AnEndpointHoldsABoundedNumber) {
  EventSubscriptions subs;
  vmci_id id = 0;
  const auto noop = [](vmci_id, vmci_event_data*) {};
  for (size_t i = 0; i < EventSubscriptions::kMaxSubscriptions; ++i) {
    ASSERT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, noop, &id), VMCI_SUCCESS) << i;
  }
  EXPECT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, noop, &id), VMCI_ERROR_NO_RESOURCES);
  ASSERT_EQ(subs.unsubscribe(id), VMCI_SUCCESS);
  EXPECT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, noop, &id), VMCI_SUCCESS);
}

TEST(EventSubscriptions, Item25_IdsStartAtOneAndIncreaseAcrossTypes) {
  EventSubscriptions subs;
  vmci_id a = 0, b = 0, c = 0;
  ASSERT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &a), VMCI_SUCCESS);
  ASSERT_EQ(subs.subscribe(VMCI_EVENT_QP_PEER_ATTACH, kNoop, &b), VMCI_SUCCESS);
  ASSERT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &c), VMCI_SUCCESS);
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(b, 2u);
  EXPECT_EQ(c, 3u);
}

TEST(EventSubscriptions, IdsAreNotReusedAfterUnsubscribe) {
  EventSubscriptions subs;
  vmci_id a, b;
  subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &a);
  ASSERT_EQ(subs.unsubscribe(a), VMCI_SUCCESS);
  subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &b);
  EXPECT_EQ(b, 2u);
}

TEST(EventSubscriptions, Item24_UnsubscribableTypesAreInvalidArgs) {
  EventSubscriptions subs;
  for (uint32_t event : {5u, 6u, 7u, 8u, 9u, 1000u}) {
    vmci_id id = 12345;
    EXPECT_EQ(subs.subscribe(event, kNoop, &id), VMCI_ERROR_INVALID_ARGS) << event;
    EXPECT_EQ(id, 12345u) << "FreeBSD leaves *sub_id alone on failure";
  }
  EXPECT_EQ(subs.size(), 0u);
}

TEST(EventSubscriptions, NullIdOrEmptyCallbackIsInvalidArgs) {
  EventSubscriptions subs;
  vmci_id id;
  EXPECT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, nullptr), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(subs.subscribe(VMCI_EVENT_CTX_REMOVED, EventCallback{}, &id), VMCI_ERROR_INVALID_ARGS);
}

TEST(EventSubscriptions, UnsubscribeUnknownIsNotFound) {
  EventSubscriptions subs;
  EXPECT_EQ(subs.unsubscribe(1), VMCI_ERROR_NOT_FOUND);
  vmci_id id;
  subs.subscribe(VMCI_EVENT_QP_RESUMED, kNoop, &id);
  EXPECT_EQ(subs.unsubscribe(id), VMCI_SUCCESS);
  EXPECT_EQ(subs.unsubscribe(id), VMCI_ERROR_NOT_FOUND);
}

TEST(EventSubscriptions, SubscribersOfOneTypeMostRecentFirst) {
  EventSubscriptions subs;
  vmci_id a, b, c;
  subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &a);
  subs.subscribe(VMCI_EVENT_QP_PEER_DETACH, kNoop, &b);
  subs.subscribe(VMCI_EVENT_CTX_REMOVED, kNoop, &c);
  const auto list = subs.subscribers(VMCI_EVENT_CTX_REMOVED);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, c);
  EXPECT_EQ(list[1].id, a);
  EXPECT_TRUE(subs.subscribers(VMCI_EVENT_CTX_ID_UPDATE).empty());
}

}  // namespace
}  // namespace vmci::proto
