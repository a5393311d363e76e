// idle_cost.cc: see idle_cost.h.
#include "idle_cost.h"

#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace bench {

IdleCost measure_idle(const std::set<pid_t>& host_threads, pid_t guest, const IdleParams& p) {
  if (host_threads.empty() || host_threads.contains(::gettid())) {
    throw std::runtime_error("idle: the host side's threads are not the measuring thread's");
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(p.settle_s));
  const IdleMeter host_meter(::getpid(), host_threads);
  const IdleMeter guest_meter(guest);
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(p.idle_s));
  IdleCost cost;
  cost.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cost.guest = guest_meter.cost();
  cost.host = host_meter.cost();
  return cost;
}

}  // namespace bench
