#include "snapshot_client.h"

#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"

namespace vmci::ctl {

SnapshotClient::SnapshotClient(std::unique_ptr<guest::Driver> driver)
    : driver_(std::move(driver)) {}

SnapshotClient::~SnapshotClient() = default;

std::unique_ptr<SnapshotClient> SnapshotClient::open(const std::string& socket_path,
                                                     std::string* error) {
  int status = 0;
  auto driver =
      guest::Driver::connect({.socket_path = socket_path, .role = Role::kHost}, &status, error);
  if (!driver) return nullptr;
  return std::unique_ptr<SnapshotClient>(new SnapshotClient(std::move(driver)));
}

bool SnapshotClient::fetch(std::string* json, std::string* error) {
  const int status = driver_->hostpeer_introspection(json);
  if (status == VMCI_ERROR_UNAVAILABLE && !driver_->connected()) {
    *error = "hostpeer ended the connection (" + driver_->close_reason() +
             "); a hostpeer older than protocol 2.2 has no introspection";
    return false;
  }
  if (status < VMCI_SUCCESS) {
    *error = "hostpeer refused the introspection request: " +
             std::string(proto::status_name(status));
    return false;
  }
  return true;
}

}  // namespace vmci::ctl
