#include "suggest.h"

#include <gtest/gtest.h>

namespace vmci::scenario {
namespace {

TEST(Suggest, EditDistanceCountsOneByteEdits) {
  struct Case {
    const char* a;
    const char* b;
    size_t distance;
  };
  const Case kCases[] = {{"", "", 0},
                         {"abc", "abc", 0},
                         {"abc", "", 3},
                         {"", "ab", 2},
                         {"expcet", "expect", 2},
                         {"kitten", "sitting", 3},
                         {"payload", "paylod", 1}};
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.a) + " / " + c.b);
    EXPECT_EQ(edit_distance(c.a, c.b), c.distance);
    EXPECT_EQ(edit_distance(c.b, c.a), c.distance);
  }
}

TEST(Suggest, NamesTheNearestKnownNameOnlyWhenItIsASlip) {
  const std::vector<std::string> ops = {"datagram_send", "datagram_create_handle", "expect_event",
                                        "expect_datagram"};
  EXPECT_EQ(did_you_mean("datagram_sned", ops), " (did you mean 'datagram_send'?)");
  EXPECT_EQ(did_you_mean("expect_evnt", ops), " (did you mean 'expect_event'?)");
  EXPECT_EQ(did_you_mean("fly", ops), "");
  EXPECT_EQ(did_you_mean("", ops), "");
  // A short name needs a close match: "as" is not a slip for "ms".
  EXPECT_EQ(did_you_mean("xy", {"ms"}), "");
  EXPECT_EQ(did_you_mean("expcet", {"expect", "as", "note"}), " (did you mean 'expect'?)");
}

}  // namespace
}  // namespace vmci::scenario
