// endpoints.h: the project's endpoints as the benchmarks start them: a
// hostpeer embedded on a socket, and Driver connections; each throws
// std::runtime_error with the reason when it cannot.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace bench {

inline std::unique_ptr<vmci::host::HostPeer> start_hostpeer(const std::string& socket_path) {
  vmci::host::Options options;
  options.socket_path = socket_path;
  std::string error;
  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) throw std::runtime_error("hostpeer: " + error);
  return hostpeer;
}

inline std::unique_ptr<vmci::guest::Driver> connect_driver(const std::string& socket_path,
                                                           vmci::proto::Role role) {
  vmci::guest::ConnectOptions options;
  options.socket_path = socket_path;
  options.role = role;
  int status = 0;
  std::string error;
  auto driver = vmci::guest::Driver::connect(options, &status, &error);
  if (!driver) {
    throw std::runtime_error(std::string(vmci::proto::role_name(role)) + " connect: " + error);
  }
  return driver;
}

}  // namespace bench
