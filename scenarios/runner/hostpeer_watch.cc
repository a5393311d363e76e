#include "hostpeer_watch.h"

#include <algorithm>
#include <thread>

#include "vmci/proto/names.h"

namespace vmci::scenario {

guest::Driver* HostpeerWatch::connection(std::string* error) {
  if (driver_ && driver_->connected()) return driver_.get();
  int status = 0;
  driver_ = guest::Driver::connect({.socket_path = socket_path_, .role = Role::kHost}, &status,
                                   error);
  return driver_.get();
}

bool HostpeerWatch::snapshot(Introspection* out, std::string* error) {
  guest::Driver* driver = connection(error);
  if (driver == nullptr) return false;
  std::string json;
  const int status = driver->hostpeer_introspection(&json);
  if (status < VMCI_SUCCESS) {
    *error = "hostpeer refused the introspection request: " + proto::describe_result(status);
    return false;
  }
  return parse_introspection(json, out, error);
}

std::optional<proto::StatsBody> HostpeerWatch::held(std::string* error) {
  std::lock_guard lock(mutex_);
  guest::Driver* driver = connection(error);
  if (driver == nullptr) return std::nullopt;
  proto::StatsBody stats{};
  const int status = driver->hostpeer_stats(&stats);
  if (status < VMCI_SUCCESS) {
    *error = "hostpeer does not answer the stats request: " + proto::describe_result(status);
    return std::nullopt;
  }
  return stats;
}

std::optional<std::set<uint64_t>> HostpeerWatch::host_connections(std::string* error) {
  std::lock_guard lock(mutex_);
  Introspection snap;
  if (!snapshot(&snap, error)) return std::nullopt;
  std::set<uint64_t> hosts;
  for (const auto& c : snap.contexts) {
    if (c.role == Role::kHost) hosts.insert(c.connection);
  }
  return hosts;
}

bool HostpeerWatch::wait_for(const std::function<bool(const Introspection&)>& done,
                             Clock::time_point deadline, const std::string& waiting_for,
                             std::string* error) {
  std::lock_guard lock(mutex_);
  std::string problem;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    Introspection snap;
    if (snapshot(&snap, &problem)) {
      if (done(snap)) return true;
      problem.clear();
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(10));
  }
  *error = waiting_for + (problem.empty() ? "" : " (" + problem + ")");
  return false;
}

bool HostpeerWatch::wait_until_context_gone(vmci_id cid, Clock::time_point deadline,
                                            std::string* error) {
  return wait_for(
      [cid](const Introspection& snap) {
        return std::none_of(snap.contexts.begin(), snap.contexts.end(),
                            [cid](const ContextInfo& c) { return c.cid == cid; });
      },
      deadline, "hostpeer still lists context " + std::to_string(cid), error);
}

bool HostpeerWatch::wait_until_one_gone(const std::set<uint64_t>& connections,
                                        Clock::time_point deadline, std::string* error) {
  return wait_for(
      [&connections](const Introspection& snap) {
        size_t still = 0;
        for (const auto& c : snap.contexts) still += connections.count(c.connection);
        return still < connections.size();
      },
      deadline, "hostpeer still lists every host connection it had before", error);
}

}  // namespace vmci::scenario
