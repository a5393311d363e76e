// driver.h: the guest side of VMCI, as a C++ object talking to hostpeer.
//
// A Driver is one connection to hostpeer: a guest context of its own, or
// (for trusted users) a host connection in context 2. It implements the
// kernel API calls of vmci::Endpoint. Guest datagram handles and event
// subscriptions live here, as in a real guest driver; hypercalls
// (VMCI_GET_CONTEXT_ID, ...) go to hostpeer as datagrams to context 0.
//
//   int status;
//   std::string error;
//   auto vm = vmci::guest::Driver::connect({.socket_path = path}, &status, &error);
//   if (!vm) { fprintf(stderr, "%s\n", error.c_str()); ... }
//   vmci_id cid = vm->get_context_id();
//
// Threading: calls may come from any thread. One reader thread takes
// hostpeer's frames; callbacks run on a separate delivery thread, one at a
// time, with no lock of the Driver held, so they may call the Driver.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "vmci/endpoint.h"
#include "vmci/proto/frame.h"
#include "vmci/role.h"
#include "vmci/stats.h"

namespace vmci::guest {

// Host connections: connect again after hostpeer went away (it was
// restarted, say), trying after first_delay, then after twice as long each
// time, up to max_delay, until it works or the Driver is destroyed. The
// new connection gets back the endpoint's datagram handles (same ids) and
// doorbells (same handles); event subscriptions live in the Driver and
// carry on. Queue pairs cannot come back: their broker state went with
// hostpeer (see the connection callback).
struct ReconnectOptions {
  bool enabled = false;
  std::chrono::milliseconds first_delay{50};
  std::chrono::milliseconds max_delay{2000};
};

// What happened to the connection, for the connection callback.
struct ConnectionChange {
  enum class Kind {
    kLost,         // the connection ended; `reason` says why
    kReconnected,  // a reconnect worked; `reason` lists what could not be
                   // re-created ("" when everything was)
  };
  Kind kind;
  std::string reason;
};
using ConnectionCallback = std::function<void(const ConnectionChange& change)>;

struct ConnectOptions {
  // Empty: $VMCI_HOSTPEER_SOCKET, else the default (vmci/proto/socket_path.h).
  std::string socket_path;
  Role role = Role::kGuest;  // Role::kHost: context 2 (trusted users)
  // Guests: the context id to ask for (3..0xFFFFFFFE); refused if in use.
  vmci_id context_id = VMCI_INVALID_ID;
  // Guests: 0 or VMCI_PRIVILEGE_FLAG_RESTRICTED.
  uint32_t priv_flags = VMCI_NO_PRIVILEGE_FLAGS;
  // Host connections only (ignored for guests, whose context cannot come back).
  ReconnectOptions reconnect{};
};

class Driver final : public Endpoint {
 public:
  // Connects and does the handshake. On failure: null, *status is
  // VMCI_ERROR_UNAVAILABLE if hostpeer could not be reached, else the
  // status of hostpeer's refusal, and *error (if given) says why.
  static std::unique_ptr<Driver> connect(const ConnectOptions& options, int* status,
                                         std::string* error = nullptr);
  // Closes the connection cleanly; running callbacks finish first.
  ~Driver() override;

  // Closes the connection now, as if the process died: nothing is detached
  // or destroyed first. Later calls return VMCI_ERROR_UNAVAILABLE.
  void abort();

  // `callback` is called once when the connection to hostpeer ends for any
  // reason but this program's own (destroying the Driver, abort()): hostpeer
  // stopped, was killed, or cut this connection off. With
  // ConnectOptions::reconnect it is called again after each reconnect.
  // It runs on the delivery thread, after the callbacks of what arrived
  // before, and may call the Driver (not destroy it). When the connection
  // ends, every QueuePair::wait of the Driver's pairs returns.
  void set_connection_callback(ConnectionCallback callback);

  vmci_id get_context_id() override;
  int datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                             DatagramCallback callback, vmci_handle* out) override;
  int datagram_destroy_handle(vmci_handle handle) override;
  int datagram_send(const vmci_datagram* dg) override;
  int event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) override;
  int event_unsubscribe(vmci_id sub_id) override;
  // A guest's pairs: local ones live in this Driver; the others are
  // hypercalls. A host connection's: hostpeer's broker, directly.
  int qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle, uint64_t produce_size,
                  uint64_t consume_size, vmci_id peer, uint32_t flags,
                  uint32_t priv_flags) override;
  int qpair_detach(std::unique_ptr<QueuePair>* qpair) override;
  // A guest's doorbells are linked with the VMCI_DOORBELL_* hypercalls; a
  // host connection's live in hostpeer. A notify is a request to hostpeer
  // until hostpeer grants a ring channel for that doorbell; later notifies
  // ring it directly (vmci/proto/ring_channel.h). Rings wake the delivery
  // thread, which runs the callbacks.
  int doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                      DoorbellCallback callback) override;
  int doorbell_destroy(vmci_handle handle) override;
  int doorbell_notify(vmci_handle handle, uint32_t priv_flags) override;
  void hold_callbacks() override;
  void release_callbacks() override;
  bool connected() const override;

  // Returns once hostpeer has handled everything this driver sent before
  // (acknowledgements of deliveries included): VMCI_SUCCESS, or
  // VMCI_ERROR_UNAVAILABLE without a connection.
  int sync();

  // How this endpoint's successful-or-not doorbell_notify calls went.
  struct RingCounts {
    uint64_t direct = 0;            // through a ring channel, no system call
    uint64_t direct_woke = 0;       // through a ring channel, one FUTEX_WAKE (the owner slept)
    uint64_t through_hostpeer = 0;  // a request to hostpeer (a first ring, or no grant)
  };
  RingCounts ring_counts() const;

  // Host connections: what hostpeer holds now and has done (to check that
  // nothing leaks). VMCI_ERROR_NO_ACCESS for a guest, UNAVAILABLE without
  // a connection.
  int hostpeer_stats(Stats* out);
  // The same, in the control channel's wire form.
  int hostpeer_stats(proto::StatsBody* out);
  // Host connections: hostpeer's introspection snapshot, as the JSON that
  // vmci::parse_introspection() reads (vmci/introspection.h), of any size
  // (asked for in pieces from a hostpeer of protocol 2.4 or later; an older
  // one answers NO_RESOURCES for a snapshot larger than a frame). NO_ACCESS
  // for a guest; UNAVAILABLE without a connection or from a hostpeer older
  // than protocol 2.2 (which ends the connection).
  int hostpeer_introspection(std::string* json);

  Role role() const;
  // Why the connection ended ("" while it is up).
  std::string close_reason() const;

 private:
  Driver();
  class Direct;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmci::guest
