#include "actor.h"

#include <gtest/gtest.h>

#include <thread>

namespace vmci::scenario {
namespace {

using std::chrono::milliseconds;

InboxItem datagram(uint8_t tag) {
  InboxItem item;
  item.kind = InboxItem::Kind::kDatagram;
  item.payload = {tag};
  return item;
}

auto tagged(uint8_t tag) {
  return [tag](const InboxItem& i) { return i.payload.size() == 1 && i.payload[0] == tag; };
}

TEST(Inbox, TakesTheFirstMatchAndLeavesTheOthersInOrder) {
  Inbox inbox;
  for (uint8_t tag : {1, 2, 3, 2}) inbox.push(datagram(tag));
  ASSERT_TRUE(inbox.take(tagged(2), Clock::now()).has_value());
  const auto rest = inbox.contents();
  ASSERT_EQ(rest.size(), 3u);
  EXPECT_EQ(rest[0].payload[0], 1);
  EXPECT_EQ(rest[1].payload[0], 3);
  EXPECT_EQ(rest[2].payload[0], 2);
}

TEST(Inbox, WaitsForAnArrivalUntilTheDeadline) {
  Inbox inbox;
  inbox.push(datagram(1));
  std::thread later([&] {
    std::this_thread::sleep_for(milliseconds(20));
    inbox.push(datagram(2));
  });
  const auto item = inbox.take(tagged(2), Clock::now() + milliseconds(5000));
  later.join();
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(inbox.contents().size(), 1u);  // the non-matching item stays
}

TEST(Inbox, GivesUpAtTheDeadline) {
  Inbox inbox;
  inbox.push(datagram(1));
  const auto start = Clock::now();
  EXPECT_FALSE(inbox.take(tagged(9), start + milliseconds(30)).has_value());
  EXPECT_GE(Clock::now() - start, milliseconds(30));
  EXPECT_FALSE(Inbox().peek_any(Clock::now() + milliseconds(10)).has_value());
  EXPECT_TRUE(inbox.peek_any(Clock::now()).has_value());
  EXPECT_EQ(inbox.contents().size(), 1u);  // peeking takes nothing
}

TEST(InboxItem, DescribesEvents) {
  InboxItem item;
  item.kind = InboxItem::Kind::kEvent;
  item.event = VMCI_EVENT_CTX_REMOVED;
  item.subscription = 1;
  item.context_id = 16;
  EXPECT_EQ(item.describe(), "event CTX_REMOVED (subscription 1, context 16)");
}

}  // namespace
}  // namespace vmci::scenario
