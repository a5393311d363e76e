#include "server/descriptor_budget.h"

#include <algorithm>

namespace vmci::host {

DescriptorBudget::Bounds DescriptorBudget::for_descriptor_limit(size_t limit) {
  const size_t total = std::max<size_t>(limit / 4, 4);
  return Bounds{std::min(kPerPeer, total / 4), total};
}

size_t DescriptorBudget::held(DescriptorHolder* peer) const {
  auto it = held_.find(peer);
  return it == held_.end() ? 0 : it->second;
}

bool DescriptorBudget::admit(DescriptorHolder* peer, size_t count) {
  if (count > bounds_.per_peer) return false;
  while (total_ - held(peer) + count > bounds_.total) {
    DescriptorHolder* greedy = greediest();
    if (greedy == nullptr || greedy == peer || held(greedy) <= count) return false;
    greedy->cut_off("hostpeer holds too many descriptors for peers that do not read; this "
                    "peer held the most");
    hold(greedy, 0);
  }
  hold(peer, count);
  return true;
}

void DescriptorBudget::hold(DescriptorHolder* peer, size_t count) {
  total_ = total_ - held(peer) + count;
  if (count == 0) {
    held_.erase(peer);
  } else {
    held_[peer] = count;
  }
}

DescriptorHolder* DescriptorBudget::greediest() const {
  auto it = std::max_element(held_.begin(), held_.end(),
                             [](const auto& a, const auto& b) { return a.second < b.second; });
  return it == held_.end() ? nullptr : it->first;
}

}  // namespace vmci::host
