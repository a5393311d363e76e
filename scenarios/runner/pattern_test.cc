#include "pattern.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmci::scenario {
namespace {

std::vector<uint8_t> bytes(uint64_t seed, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  PatternStream(seed).fill(offset, out.data(), n);
  return out;
}

TEST(Pattern, CheckValuesOfTheFormat) {
  EXPECT_EQ(bytes(0, 0, 8), (std::vector<uint8_t>{0xaf, 0xcd, 0x1d, 0x7b, 0x39, 0xa8, 0x20, 0xe2}));
  EXPECT_EQ(bytes(7, 0, 12), (std::vector<uint8_t>{0xd7, 0x0d, 0x32, 0x59, 0xe4, 0xe1, 0xcb, 0x63,
                                                   0x1c, 0x66, 0x3c, 0xf4}));
}

TEST(Pattern, OffsetsAgreeWithTheWholeStream) {
  const auto whole = bytes(7, 0, 64);
  for (uint64_t offset : {1u, 3u, 7u, 8u, 9u, 31u}) {
    const auto part = bytes(7, offset, 20);
    for (size_t i = 0; i < part.size(); ++i) {
      EXPECT_EQ(part[i], whole[offset + i]) << offset << "+" << i;
      EXPECT_EQ(PatternStream(7).byte_at(offset + i), whole[offset + i]);
    }
  }
}

}  // namespace
}  // namespace vmci::scenario
