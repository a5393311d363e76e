// The C kernel API: a thin layer over one process-wide Driver.
//
// The kernel API has no connection argument, so this file holds the one
// piece of process-wide state of the library: the current Driver.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

  int connect(const ConnectOptions& options, bool quiet = false) {
    std::shared_ptr<Driver> old;
    std::lock_guard lock(mutex_);
    old = std::move(driver_);
    return connect_locked(options, quiet);
  }

  void set_callback(vmci_hostpeer_connection_cb callback, void* data) {
    std::lock_guard lock(mutex_);
    callback_ = callback;
    callback_data_ = data;
    if (driver_) driver_->set_connection_callback(bridge());
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
  int connect_locked(const ConnectOptions& options, bool quiet = false) {
    int status = VMCI_ERROR_UNAVAILABLE;
    std::string error;
    driver_ = Driver::connect(options, &status, &error);
    last_error_ = driver_ ? "" : error;
    if (driver_) driver_->set_connection_callback(bridge());
    if (!driver_ && status == VMCI_ERROR_UNAVAILABLE) report_unreachable(quiet);
    return status;
  }

  // The first failure to reach hostpeer, once, to stderr (unless quiet).
  void report_unreachable(bool quiet) {
    const char* env = std::getenv("VMCI_HOSTPEER_QUIET");
    if (quiet || reported_ || (env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0)) {
      return;
    }
    reported_ = true;
    std::fprintf(stderr, "vmci: %s\n", last_error_.c_str());
  }

  // The C callback as the Driver's (none: an empty one).
  vmci::guest::ConnectionCallback bridge() const {
    if (callback_ == nullptr) return {};
    return [callback = callback_, data = callback_data_](const vmci::guest::ConnectionChange& c) {
      callback(c.kind == vmci::guest::ConnectionChange::Kind::kLost ? VMCI_HOSTPEER_LOST
                                                                    : VMCI_HOSTPEER_RECONNECTED,
               c.reason.c_str(), data);
    };
  }

  std::mutex mutex_;
  std::shared_ptr<Driver> driver_;
  vmci_hostpeer_connection_cb callback_ = nullptr;
  void* callback_data_ = nullptr;
  std::string last_error_;
  bool reported_ = false;
};

ImplicitConnection& implicit() {
  static ImplicitConnection connection;
  return connection;
}

thread_local std::string last_error_copy;

}  // namespace

// A queue pair of the C API: the endpoint, and the driver it came from
// (kept alive for the detach even if the process connects again).
struct vmci_qpair {
  std::shared_ptr<Driver> driver;
  std::unique_ptr<vmci::QueuePair> endpoint;
};

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
  options.reconnect.enabled = (o->flags & VMCI_HOSTPEER_FLAG_RECONNECT) != 0;
  return implicit().connect(options, (o->flags & VMCI_HOSTPEER_FLAG_QUIET) != 0);
}

void vmci_hostpeer_disconnect(void) { implicit().disconnect(); }

void vmci_hostpeer_set_disconnect_callback(vmci_hostpeer_connection_cb callback, void* data) {
  implicit().set_callback(callback, data);
}

const char* vmci_hostpeer_last_error(void) {
  last_error_copy = implicit().last_error();
  return last_error_copy.c_str();
}

struct vmci_endpoint* vmci_hostpeer_endpoint(void) {
  std::shared_ptr<Driver> driver = implicit().get();
  return driver ? new vmci_endpoint{std::move(driver)} : nullptr;
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

int vmci_doorbell_create(struct vmci_handle* handle, uint32_t flags,
                         vmci_privilege_flags priv_flags, vmci_callback notify_cb,
                         void* client_data) {
  if (handle == nullptr || notify_cb == nullptr) return VMCI_ERROR_INVALID_ARGS;
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->doorbell_create(handle, flags, priv_flags,
                                 [notify_cb, client_data] { notify_cb(client_data); });
}

int vmci_doorbell_destroy(struct vmci_handle handle) {
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->doorbell_destroy(handle);
}

int vmci_doorbell_notify(struct vmci_handle handle, vmci_privilege_flags priv_flags) {
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  return driver->doorbell_notify(handle, priv_flags);
}

int vmci_qpair_alloc(struct vmci_qpair** qpair, struct vmci_handle* handle,
                     uint64_t produce_q_size, uint64_t consume_q_size, vmci_id peer,
                     uint32_t flags, vmci_privilege_flags priv_flags) {
  auto driver = implicit().get();
  if (!driver) return VMCI_ERROR_UNAVAILABLE;
  std::unique_ptr<vmci::QueuePair> endpoint;
  const int status = driver->qpair_alloc(qpair ? &endpoint : nullptr, handle, produce_q_size,
                                         consume_q_size, peer, flags, priv_flags);
  if (status < VMCI_SUCCESS) return status;
  *qpair = new vmci_qpair{std::move(driver), std::move(endpoint)};
  return status;
}

int vmci_qpair_detach(struct vmci_qpair** qpair) {
  if (qpair == nullptr || *qpair == nullptr) return VMCI_ERROR_INVALID_ARGS;
  std::unique_ptr<vmci_qpair> owned(*qpair);
  *qpair = nullptr;  // whatever the result (spec §11 item 17)
  return owned->driver->qpair_detach(&owned->endpoint);
}

int vmci_qpair_get_produce_indexes(const struct vmci_qpair* qpair, uint64_t* producer_tail,
                                   uint64_t* consumer_head) {
  if (qpair == nullptr) return VMCI_ERROR_INVALID_ARGS;
  return qpair->endpoint->get_produce_indexes(producer_tail, consumer_head);
}

int vmci_qpair_get_consume_indexes(const struct vmci_qpair* qpair, uint64_t* consumer_tail,
                                   uint64_t* producer_head) {
  if (qpair == nullptr) return VMCI_ERROR_INVALID_ARGS;
  return qpair->endpoint->get_consume_indexes(consumer_tail, producer_head);
}

int64_t vmci_qpair_produce_free_space(const struct vmci_qpair* qpair) {
  return qpair ? qpair->endpoint->produce_free_space() : VMCI_ERROR_INVALID_ARGS;
}

int64_t vmci_qpair_produce_buf_ready(const struct vmci_qpair* qpair) {
  return qpair ? qpair->endpoint->produce_buf_ready() : VMCI_ERROR_INVALID_ARGS;
}

int64_t vmci_qpair_consume_free_space(const struct vmci_qpair* qpair) {
  return qpair ? qpair->endpoint->consume_free_space() : VMCI_ERROR_INVALID_ARGS;
}

int64_t vmci_qpair_consume_buf_ready(const struct vmci_qpair* qpair) {
  return qpair ? qpair->endpoint->consume_buf_ready() : VMCI_ERROR_INVALID_ARGS;
}

int64_t vmci_qpair_wait(struct vmci_qpair* qpair, int what, int timeout_ms) {
  if (qpair == nullptr || (what != VMCI_QPAIR_WAIT_DATA && what != VMCI_QPAIR_WAIT_SPACE)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  return qpair->endpoint->wait(
      what == VMCI_QPAIR_WAIT_DATA ? vmci::QueuePair::Wait::kData : vmci::QueuePair::Wait::kSpace,
      std::chrono::milliseconds(timeout_ms < 0 ? -1 : timeout_ms));
}

ssize_t vmci_qpair_enqueue(struct vmci_qpair* qpair, const void* buf, size_t buf_size, int) {
  return qpair ? qpair->endpoint->enqueue(buf, buf_size) : VMCI_ERROR_INVALID_ARGS;
}

ssize_t vmci_qpair_dequeue(struct vmci_qpair* qpair, void* buf, size_t buf_size, int) {
  return qpair ? qpair->endpoint->dequeue(buf, buf_size) : VMCI_ERROR_INVALID_ARGS;
}

ssize_t vmci_qpair_peek(struct vmci_qpair* qpair, void* buf, size_t buf_size, int) {
  return qpair ? qpair->endpoint->peek(buf, buf_size) : VMCI_ERROR_INVALID_ARGS;
}

ssize_t vmci_qpair_enquev(struct vmci_qpair* qpair, void* iov, size_t iov_size, int) {
  return qpair ? qpair->endpoint->enquev(static_cast<struct iovec*>(iov), iov_size)
               : VMCI_ERROR_INVALID_ARGS;
}

ssize_t vmci_qpair_dequev(struct vmci_qpair* qpair, void* iov, size_t iov_size, int) {
  return qpair ? qpair->endpoint->dequev(static_cast<struct iovec*>(iov), iov_size)
               : VMCI_ERROR_INVALID_ARGS;
}

ssize_t vmci_qpair_peekv(struct vmci_qpair* qpair, void* iov, size_t iov_size, int) {
  return qpair ? qpair->endpoint->peekv(static_cast<struct iovec*>(iov), iov_size)
               : VMCI_ERROR_INVALID_ARGS;
}

}  // extern "C"
