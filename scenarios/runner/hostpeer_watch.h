// hostpeer_watch.h: the runner's own host connection to the hostpeer its
// actors use, opened when first needed and again after hostpeer restarts.
// It creates nothing in hostpeer, so a scenario does not see it (beyond one
// more host connection in hostpeer's counts).
//
//   HostpeerWatch watch(socket_path);
//   const auto hosts = watch.host_connections(&error);  // before ending one
//   actor.kill();
//   if (!watch.wait_until_one_gone(*hosts, deadline, &error)) ...
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "vmci/guest/driver.h"
#include "vmci/introspection.h"
#include "vmci/proto/frame.h"

namespace vmci::scenario {

class HostpeerWatch {
 public:
  using Clock = std::chrono::steady_clock;

  explicit HostpeerWatch(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // What hostpeer holds now (the stats request); nullopt with *error.
  std::optional<proto::StatsBody> held(std::string* error);

  // hostpeer's numbers of the host connections it has now (its
  // introspection snapshot), this one's included; nullopt with *error.
  std::optional<std::set<uint64_t>> host_connections(std::string* error);

  // Return true once hostpeer no longer lists guest context `cid`, or no
  // longer lists one of `connections`; false with *error at `deadline`.
  bool wait_until_context_gone(vmci_id cid, Clock::time_point deadline, std::string* error);
  bool wait_until_one_gone(const std::set<uint64_t>& connections, Clock::time_point deadline,
                           std::string* error);

 private:
  // The connection, reopened if hostpeer ended it; null with *error.
  guest::Driver* connection(std::string* error);
  // hostpeer's snapshot now; false with *error.
  bool snapshot(Introspection* out, std::string* error);
  // Polls snapshots until `done` is true of one (true), or `deadline`
  // (false, *error: `waiting_for` and what went wrong, if anything).
  bool wait_for(const std::function<bool(const Introspection&)>& done,
                Clock::time_point deadline, const std::string& waiting_for,
                std::string* error);

  const std::string socket_path_;
  std::mutex mutex_;
  std::unique_ptr<guest::Driver> driver_;
};

}  // namespace vmci::scenario
