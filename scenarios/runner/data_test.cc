#include "data.h"

#include <gtest/gtest.h>

namespace vmci::scenario {
namespace {

TEST(Data, HexDecoding) {
  std::vector<uint8_t> out;
  std::string error;
  ASSERT_TRUE(decode_hex("00ff10", &out, &error));
  EXPECT_EQ(out, (std::vector<uint8_t>{0x00, 0xff, 0x10}));
  EXPECT_FALSE(decode_hex("0", &out, &error));
  EXPECT_FALSE(decode_hex("zz", &out, &error));
  EXPECT_NE(error.find("position 0"), std::string::npos);
}

TEST(Data, Base64Decoding) {
  struct Case {
    const char* text;
    std::vector<uint8_t> bytes;
  } cases[] = {{"AAEC", {0, 1, 2}}, {"aGk=", {'h', 'i'}}, {"aA==", {'h'}}, {"", {}}};
  for (const auto& c : cases) {
    std::vector<uint8_t> out;
    std::string error;
    ASSERT_TRUE(decode_base64(c.text, &out, &error)) << c.text << ": " << error;
    EXPECT_EQ(out, c.bytes) << c.text;
  }
  std::vector<uint8_t> out;
  std::string error;
  EXPECT_FALSE(decode_base64("AAE", &out, &error));
  EXPECT_FALSE(decode_base64("A=AA", &out, &error));
  EXPECT_FALSE(decode_base64("AA*A", &out, &error));
}

TEST(Data, CompareReportsTheFirstDifferingOffsetAndSeed) {
  Data pattern;
  pattern.kind = Data::Kind::kPattern;
  pattern.seed = 7;
  pattern.length = 10000;
  auto actual = pattern.materialize();
  EXPECT_FALSE(compare(pattern, actual).has_value());
  actual[5000] ^= 1;
  const auto m = compare(pattern, actual);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->offset, 5000u);
  EXPECT_NE(m->message.find("offset 5000"), std::string::npos);
  EXPECT_NE(m->message.find("seed 7"), std::string::npos);
}

TEST(Data, CompareChecksTheLength) {
  Data zeros;
  zeros.kind = Data::Kind::kZeros;
  zeros.length = 4;
  EXPECT_TRUE(compare(zeros, std::vector<uint8_t>(3)).has_value());
  EXPECT_TRUE(compare(zeros, std::vector<uint8_t>(5)).has_value());
  EXPECT_FALSE(compare(zeros, std::vector<uint8_t>(4)).has_value());
}

TEST(Data, PatternWithOffsetIsAWindowOfTheStream) {
  Data whole, window;
  whole.kind = window.kind = Data::Kind::kPattern;
  whole.seed = window.seed = 3;
  whole.length = 100;
  window.length = 50;
  window.offset = 25;
  const auto a = whole.materialize();
  const auto b = window.materialize();
  EXPECT_TRUE(std::equal(b.begin(), b.end(), a.begin() + 25));
}

}  // namespace
}  // namespace vmci::scenario
