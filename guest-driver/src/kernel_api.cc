// The C kernel API: a thin layer over one process-wide Driver.
//
// The kernel API has no connection argument, so this file holds the one
// piece of process-wide state of the library: the current Driver.
#include <memory>
#include <mutex>
#include <string>

#include "vmci/guest/driver.h"
#include "vmci/vmci_hostpeer.h"
#include "vmci/vmci_kernel_api.h"

namespace {

using vmci::guest::ConnectOptions;
using vmci::guest::Driver;

class ImplicitConnection {
 public:
  // The current driver, connecting with default options if there is none;
  // null if that fails.
  std::shared_ptr<Driver> get() {
    std::lock_guard lock(mutex_);
    if (!driver_) connect_locked(ConnectOptions{});
    return driver_;
  }

  int connect(const ConnectOptions& options) {
    std::shared_ptr<Driver> old;
    std::lock_guard lock(mutex_);
    old = std::move(driver_);
    return connect_locked(options);
  }

  void disconnect() {
    std::shared_ptr<Driver> old;
    std::lock_guard lock(mutex_);
    old = std::move(driver_);
  }

  std::string last_error() {
    std::lock_guard lock(mutex_);
    if (driver_ && !driver_->connected()) last_error_ = driver_->close_reason();
    return last_error_;
  }

 private:
  int connect_locked(const ConnectOptions& options) {
    int status = VMCI_ERROR_UNAVAILABLE;
    std::string error;
    driver_ = Driver::connect(options, &status, &error);
    last_error_ = driver_ ? "" : error;
    return status;
  }

  std::mutex mutex_;
  std::shared_ptr<Driver> driver_;
  std::string last_error_;
};

ImplicitConnection& implicit() {
  static ImplicitConnection connection;
  return connection;
}

thread_local std::string last_error_copy;

}  // namespace

extern "C" {

int vmci_hostpeer_connect(const char* socket_path) {
  ConnectOptions options;
  if (socket_path != nullptr) options.socket_path = socket_path;
  return implicit().connect(options);
}

int vmci_hostpeer_connect_options(const struct vmci_hostpeer_options* o) {
  if (o == nullptr || (o->role != VMCI_HOSTPEER_ROLE_GUEST && o->role != VMCI_HOSTPEER_ROLE_HOST)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  ConnectOptions options;
  if (o->socket_path != nullptr) options.socket_path = o->socket_path;
  options.role =
      o->role == VMCI_HOSTPEER_ROLE_HOST ? vmci::proto::Role::kHost : vmci::proto::Role::kGuest;
  options.context_id = o->context_id;
  options.priv_flags = o->priv_flags;
  return implicit().connect(options);
}

void vmci_hostpeer_disconnect(void) { implicit().disconnect(); }

const char* vmci_hostpeer_last_error(void) {
  last_error_copy = implicit().last_error();
  return last_error_copy.c_str();
}

int vmci_datagram_create_handle(vmci_id resource_id, uint32_t flags, vmci_datagram_recv_cb recv_cb,
                                void* client_data, struct vmci_handle* out_handle) {
  return vmci_datagram_create_handle_priv(resource_id, flags, VMCI_DEFAULT_PROC_PRIVILEGE_FLAGS,
                                          recv_cb, client_data, out_handle);
}

int vmci_datagram_create_handle_priv(vmci_id resource_id, uint32_t flags,
                                     vmci_privilege_flags priv_flags, vmci_datagram_recv_cb recv_cb,
                                     void* client_data, struct vmci_handle* out_handle) {
  if (recv_cb == nullptr || out_handle == nullptr) return VMCI_ERROR_INVALID_ARGS;
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->datagram_create_handle(
      resource_id, flags, priv_flags,
      [recv_cb, client_data](vmci_datagram* dg) { return recv_cb(client_data, dg); }, out_handle);
}

int vmci_datagram_destroy_handle(struct vmci_handle handle) {
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->datagram_destroy_handle(handle);
}

int vmci_datagram_send(struct vmci_datagram* msg) {
  if (msg == nullptr) return VMCI_ERROR_INVALID_ARGS;
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->datagram_send(msg);
}

vmci_id vmci_get_context_id(void) {
  auto driver = implicit().get();
  if (!driver) return VMCI_INVALID_ID;
  return driver->get_context_id();
}

int vmci_event_subscribe(vmci_event_type event, vmci_event_cb callback, void* callback_data,
                         vmci_id* subscription) {
  if (callback == nullptr || subscription == nullptr) return VMCI_ERROR_INVALID_ARGS;
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->event_subscribe(
      event,
      [callback, callback_data](vmci_id id, vmci_event_data* ed) {
        callback(id, ed, callback_data);
      },
      subscription);
}

int vmci_event_unsubscribe(vmci_id subscription) {
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->event_unsubscribe(subscription);
}

}  // extern "C"
