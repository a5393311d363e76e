// rtt.cc: percentiles and context-switch counts for round-trip trials
// (see rtt.h).
#include "rtt.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <utility>

#include "thread_costs.h"

namespace bench {

uint64_t context_switches(pid_t pid) { return threads_cost(pid).switches; }

void wait_until_ready(Control& control, Child& child, double timeout_s) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (control.ready.load(std::memory_order_acquire) == 0) {
    child.check_running();
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("the child never got ready");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void say_ready(Control& control) { control.ready.store(1, std::memory_order_release); }

void stop_child(Control& control) {
  control.stop.store(1, std::memory_order_release);
  futex_wake(control.stop, INT32_MAX);
}

double percentile(std::vector<int64_t>& ns, double q) {
  if (ns.empty()) throw std::runtime_error("no round trips timed");
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ns.size())));
  const size_t index = std::clamp<size_t>(rank, 1, ns.size()) - 1;
  std::nth_element(ns.begin(), ns.begin() + static_cast<ptrdiff_t>(index), ns.end());
  return static_cast<double>(ns[index]);
}

void set_percentiles(std::vector<int64_t> ns, RttResult& r) {
  r.p50_ns = percentile(ns, 0.50);
  r.p99_ns = percentile(ns, 0.99);
}

SwitchCount::SwitchCount(std::vector<Participant> participants)
    : participants_(std::move(participants)) {
  for (const Participant& who : participants_) before_.push_back(context_switches(who.pid));
}

void SwitchCount::finish(int rounds, RttResult& r) const {
  r.switches_per_rtt = 0;
  r.switches_detail.clear();
  for (size_t i = 0; i < participants_.size(); ++i) {
    const double per_rtt =
        static_cast<double>(context_switches(participants_[i].pid) - before_[i]) /
        static_cast<double>(rounds);
    r.switches_per_rtt += per_rtt;
    char text[64];
    std::snprintf(text, sizeof text, "%s%s %.2f", i ? " + " : "", participants_[i].label.c_str(),
                  per_rtt);
    r.switches_detail += text;
  }
}

}  // namespace bench
