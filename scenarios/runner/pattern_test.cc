#include "pattern.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "vmci/vmci_pattern.h"

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

// The public C functions (vmci/vmci_pattern.h) that a proxy uses give the
// bytes the runner sends and expects.
TEST(Pattern, ThePublicFunctionsGiveTheRunnersBytes) {
  for (uint64_t seed : {0ull, 7ull, 0xFFFFFFFFFFFFFFFFull}) {
    SCOPED_TRACE(seed);
    std::vector<uint8_t> c(100);
    vmci_pattern_fill(seed, 13, c.data(), c.size());
    EXPECT_EQ(c, bytes(seed, 13, 100));
    EXPECT_EQ(vmci_pattern_word(seed, 5), PatternStream(seed).word(5));
    EXPECT_EQ(vmci_pattern_check(seed, 13, c.data(), c.size()), c.size());
    c[42] ^= 1;
    EXPECT_EQ(vmci_pattern_check(seed, 13, c.data(), c.size()), 42u);
    EXPECT_EQ(vmci_pattern_check(seed, 13, c.data(), 0), 0u);
  }
}

// docs/SCENARIO-FORMAT.md gives the first bytes of two seeds as check
// values: they are what the code makes.
TEST(Pattern, TheCheckValuesInTheFormatReferenceAreTheCodes) {
  std::ifstream in(std::string(VMCI_SCENARIO_CORPUS) + "/../docs/SCENARIO-FORMAT.md");
  ASSERT_TRUE(in) << "docs/SCENARIO-FORMAT.md";
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const std::regex check("seed ([0-9]+) begins\\s+`([0-9a-f ]+)`");
  int found = 0;
  for (auto it = std::sregex_iterator(doc.begin(), doc.end(), check); it != std::sregex_iterator();
       ++it) {
    const uint64_t seed = std::stoull((*it)[1].str());
    std::istringstream hex((*it)[2].str());
    std::vector<uint8_t> documented;
    for (std::string byte; hex >> byte;)
      documented.push_back(static_cast<uint8_t>(std::stoul(byte, nullptr, 16)));
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<uint8_t> made(documented.size());
    vmci_pattern_fill(seed, 0, made.data(), made.size());
    EXPECT_EQ(made, documented);
    ++found;
  }
  EXPECT_GE(found, 2) << "the check values are no longer where this test looks";
}

}  // namespace
}  // namespace vmci::scenario
