// snapshot_client.h: a host connection to a running hostpeer that asks it
// for introspection snapshots (Driver::hostpeer_introspection, protocol
// 2.2). It holds nothing in hostpeer but the connection itself.
//
//   std::string error;
//   auto client = SnapshotClient::open(socket_path, &error);
//   std::string json;
//   if (!client || !client->fetch(&json, &error)) fail(error);
#pragma once

#include <memory>
#include <string>

namespace vmci::guest {
class Driver;
}

namespace vmci::ctl {

class SnapshotClient {
 public:
  // Empty `socket_path`: $VMCI_HOSTPEER_SOCKET, else the default. Null with
  // *error (what to do about it) if hostpeer cannot be reached or refuses.
  static std::unique_ptr<SnapshotClient> open(const std::string& socket_path, std::string* error);
  ~SnapshotClient();

  // The snapshot's JSON; false with *error.
  bool fetch(std::string* json, std::string* error);

 private:
  explicit SnapshotClient(std::unique_ptr<guest::Driver> driver);
  std::unique_ptr<guest::Driver> driver_;
};

}  // namespace vmci::ctl
