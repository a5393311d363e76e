#include "server/descriptor_budget.h"

#include <gtest/gtest.h>

namespace vmci::host {
namespace {

struct Holder : DescriptorHolder {
  DescriptorBudget* budget = nullptr;
  int cut = 0;
  void cut_off(const std::string&) override {
    ++cut;
    budget->hold(this, 0);
  }
};

TEST(DescriptorBudget, BoundsComeFromTheProcessLimit) {
  const auto b = DescriptorBudget::for_descriptor_limit(20000);
  EXPECT_EQ(b.total, 5000u);
  EXPECT_EQ(b.per_peer, DescriptorBudget::kPerPeer);
  const auto small = DescriptorBudget::for_descriptor_limit(64);
  EXPECT_EQ(small.total, 16u);
  EXPECT_EQ(small.per_peer, 4u);
}

TEST(DescriptorBudget, APeerOverItsOwnBoundIsRefusedAndKeepsWhatItHeld) {
  DescriptorBudget budget({4, 100});
  Holder a;
  a.budget = &budget;
  EXPECT_TRUE(budget.admit(&a, 4));
  EXPECT_FALSE(budget.admit(&a, 5));
  EXPECT_EQ(budget.held(&a), 4u);
  budget.hold(&a, 1);
  EXPECT_EQ(budget.total_held(), 1u);
  budget.hold(&a, 0);
  EXPECT_EQ(budget.total_held(), 0u);
}

TEST(DescriptorBudget, OverTheTotalTheGreediestIsCutOffNotAPeerThatHoldsLittle) {
  DescriptorBudget budget({10, 20});
  Holder greedy, other, modest;
  for (Holder* h : {&greedy, &other, &modest}) h->budget = &budget;
  EXPECT_TRUE(budget.admit(&greedy, 10));
  EXPECT_TRUE(budget.admit(&other, 9));
  EXPECT_TRUE(budget.admit(&modest, 1));
  EXPECT_TRUE(budget.admit(&modest, 2));  // over 20: the greediest goes
  EXPECT_EQ(greedy.cut, 1);
  EXPECT_EQ(other.cut, 0);
  EXPECT_EQ(budget.held(&greedy), 0u);
  EXPECT_EQ(budget.total_held(), 11u);
}

TEST(DescriptorBudget, OverTheTotalTheGreediestAskingIsRefused) {
  DescriptorBudget budget({10, 15});
  Holder a, b;
  a.budget = b.budget = &budget;
  EXPECT_TRUE(budget.admit(&a, 8));
  EXPECT_TRUE(budget.admit(&b, 7));
  EXPECT_FALSE(budget.admit(&a, 9));  // it would hold the most
  EXPECT_EQ(b.cut, 0);
  EXPECT_EQ(budget.held(&a), 8u);
}

}  // namespace
}  // namespace vmci::host
