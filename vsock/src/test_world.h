// test_world.h: what the vsock tests run against: a hostpeer embedded in
// the test, its socket in a temporary directory, its host endpoint, and
// guests connected over that socket (real endpoints, real queue pairs).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace vmci::vsock {

class TestWorld {
 public:
  // Throws std::runtime_error (which fails the test) if hostpeer cannot start.
  TestWorld() {
    char pattern[] = "/tmp/vsock-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    host::Options options;
    options.socket_path = dir_ + "/hostpeer.sock";
    std::string error;
    hostpeer_ = host::HostPeer::start(options, &error);
    if (!hostpeer_) throw std::runtime_error("hostpeer: " + error);
    host_ = hostpeer_->connect_host();
  }
  ~TestWorld() {
    host_.reset();
    hostpeer_.reset();
    std::filesystem::remove_all(dir_);
  }
  TestWorld(const TestWorld&) = delete;
  TestWorld& operator=(const TestWorld&) = delete;

  Endpoint& host() { return *host_; }
  const std::string& socket_path() const { return hostpeer_->socket_path(); }
  // A guest context; null (and a test failure) if it cannot connect.
  std::unique_ptr<guest::Driver> connect_guest(uint32_t priv_flags = 0) {
    int status = 0;
    std::string error;
    auto driver = guest::Driver::connect(
        {.socket_path = socket_path(), .role = proto::Role::kGuest, .priv_flags = priv_flags},
        &status, &error);
    if (!driver) throw std::runtime_error("guest: " + error);
    return driver;
  }
  // The host endpoint goes (before the world does).
  void drop_host() { host_.reset(); }

 private:
  std::string dir_;
  std::unique_ptr<host::HostPeer> hostpeer_;
  std::unique_ptr<Endpoint> host_;
};

}  // namespace vmci::vsock
