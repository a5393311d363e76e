// thread_costs.cc: see thread_costs.h.
#include "thread_costs.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace bench {

std::map<pid_t, ThreadsCost> costs_by_thread(pid_t pid) {
  std::map<pid_t, ThreadsCost> threads;
  std::error_code error;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    const pid_t tid = static_cast<pid_t>(std::stol(task.path().filename().string()));
    // "run_ns wait_ns timeslices"; a thread that has just ended has none.
    std::ifstream schedstat(task.path() / "schedstat");
    uint64_t run_ns = 0;
    if (!(schedstat >> run_ns)) continue;
    ThreadsCost cost;
    cost.cpu_s = static_cast<double>(run_ns) * 1e-9;
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      // "voluntary_ctxt_switches:\t12" and "nonvoluntary_ctxt_switches:\t3"
      if (line.find("ctxt_switches:") == std::string::npos) continue;
      cost.switches += std::stoull(line.substr(line.find(':') + 1));
    }
    threads[tid] = cost;
  }
  if (error) throw std::runtime_error("cannot read " + tasks.string() + ": " + error.message());
  return threads;
}

ThreadsCost threads_cost(pid_t pid) {
  ThreadsCost total;
  for (const auto& [tid, cost] : costs_by_thread(pid)) {
    total.cpu_s += cost.cpu_s;
    total.switches += cost.switches;
  }
  return total;
}

std::set<pid_t> thread_ids(pid_t pid) {
  std::set<pid_t> ids;
  for (const auto& [tid, cost] : costs_by_thread(pid)) ids.insert(tid);
  return ids;
}

IdleMeter::IdleMeter(pid_t pid, std::set<pid_t> only)
    : pid_(pid), only_(std::move(only)), before_(sample()) {
  if (!only_.empty() && before_.size() != only_.size()) {
    throw std::runtime_error("a thread to measure of process " + std::to_string(pid) +
                             " has ended");
  }
}

std::map<pid_t, ThreadsCost> IdleMeter::sample() const {
  std::map<pid_t, ThreadsCost> threads = costs_by_thread(pid_);
  if (!only_.empty()) std::erase_if(threads, [&](const auto& t) { return !only_.contains(t.first); });
  return threads;
}

ThreadsCost IdleMeter::cost() const {
  const std::map<pid_t, ThreadsCost> after = sample();
  for (const auto& [tid, then] : before_) {
    if (!after.contains(tid)) {
      throw std::runtime_error("thread " + std::to_string(tid) + " of process " +
                               std::to_string(pid_) + " ended while it was measured");
    }
  }
  ThreadsCost total;
  for (const auto& [tid, now] : after) {
    const auto then = before_.find(tid);
    const ThreadsCost start = then == before_.end() ? ThreadsCost{} : then->second;
    total.cpu_s += now.cpu_s - start.cpu_s;
    total.switches += now.switches - start.switches;
  }
  return total;
}

}  // namespace bench
