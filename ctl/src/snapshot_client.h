// snapshot_client.h: a host connection to a running hostpeer that asks it
// for introspection snapshots (frame.h's kIntrospect, protocol 2.2). It
// holds nothing in hostpeer but the connection itself, and acknowledges at
// once what hostpeer delivers to it (every host connection hears of guest
// contexts that go).
//
//   std::string error;
//   auto client = SnapshotClient::open(socket_path, &error);
//   std::string json;
//   if (!client || !client->fetch(&json, &error)) fail(error);
#pragma once

#include <memory>
#include <string>

namespace vmci::guest::internal {
class Connection;
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
  SnapshotClient();
  struct Holder;
  std::shared_ptr<Holder> holder_;
  std::unique_ptr<guest::internal::Connection> connection_;
};

}  // namespace vmci::ctl
