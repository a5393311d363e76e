#include "vmci/proto/ring.h"

#include <gtest/gtest.h>

namespace vmci::proto {
namespace {

struct SpaceCase {
  const char* what;
  uint64_t t, h, S;
  int64_t free, ready;
};

constexpr SpaceCase kSpaceCases[] = {
    {"fresh queue holds S-1", 0, 0, 4096, 4095, 0},
    {"size 1 is always full", 0, 0, 1, 0, 0},
    {"size 0 is invalid", 0, 0, 0, VMCI_ERROR_INVALID_SIZE, VMCI_ERROR_INVALID_SIZE},
    {"tail at S is invalid", 4096, 0, 4096, VMCI_ERROR_INVALID_SIZE, VMCI_ERROR_INVALID_SIZE},
    {"head at S is invalid", 0, 4096, 4096, VMCI_ERROR_INVALID_SIZE, VMCI_ERROR_INVALID_SIZE},
    {"tail past S is invalid", ~0ull, 0, 4096, VMCI_ERROR_INVALID_SIZE, VMCI_ERROR_INVALID_SIZE},
    {"full: tail one behind head", 9, 10, 4096, 0, 4095},
    {"full without wrap", 4095, 0, 4096, 0, 4095},
    {"tail ahead of head", 100, 40, 4096, 4035, 60},
    {"wrapped: tail behind head", 10, 4090, 4096, 4079, 16},
    {"empty at the last byte", 4095, 4095, 4096, 4095, 0},
    {"size 2 with one byte", 1, 0, 2, 0, 1},
    {"size 2 wrapped", 0, 1, 2, 0, 1},
};

TEST(Ring, FreeSpaceAndBufReady) {
  for (const auto& c : kSpaceCases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(free_space(c.t, c.h, c.S), c.free);
    EXPECT_EQ(buf_ready(c.t, c.h, c.S), c.ready);
  }
}

TEST(Ring, FreePlusReadyIsSizeMinusOne) {
  for (uint64_t S : {1ull, 2ull, 3ull, 7ull, 4096ull}) {
    for (uint64_t t = 0; t < S; ++t) {
      for (uint64_t h = 0; h < S; ++h) {
        EXPECT_EQ(free_space(t, h, S) + buf_ready(t, h, S), static_cast<int64_t>(S - 1));
      }
    }
  }
}

struct AdvanceCase {
  const char* what;
  uint64_t p, n, S, result;
};

constexpr AdvanceCase kAdvanceCases[] = {
    {"no wrap", 0, 10, 4096, 10},
    {"zero bytes", 17, 0, 4096, 17},
    {"ends exactly at S wraps to 0", 4086, 10, 4096, 0},
    {"wraps past S", 4090, 16, 4096, 10},
    {"size 1", 0, 0, 1, 0},
    {"whole queue minus one", 1, 4095, 4096, 0},
    {"to the last byte", 0, 4095, 4096, 4095},
};

TEST(Ring, Advance) {
  for (const auto& c : kAdvanceCases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(advance(c.p, c.n, c.S), c.result);
  }
}

struct SpanCase {
  const char* what;
  uint64_t p, n, S;
  RingSpan span;
};

constexpr SpanCase kSpanCases[] = {
    {"inside", 0, 100, 4096, {100, 0}},
    {"ends one before S", 4000, 95, 4096, {95, 0}},
    {"ends exactly at S: split with empty second part", 4000, 96, 4096, {96, 0}},
    {"wraps", 4000, 200, 4096, {96, 104}},
    {"starts at the last byte", 4095, 2, 4096, {1, 1}},
    {"zero bytes", 5, 0, 4096, {0, 0}},
};

TEST(Ring, SpanSplitsAtTheEnd) {
  for (const auto& c : kSpanCases) {
    SCOPED_TRACE(c.what);
    const RingSpan s = ring_span(c.p, c.n, c.S);
    EXPECT_EQ(s.first, c.span.first);
    EXPECT_EQ(s.second, c.span.second);
    EXPECT_EQ(s.first + s.second, c.n);
  }
}

}  // namespace
}  // namespace vmci::proto
