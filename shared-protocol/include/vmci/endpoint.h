// endpoint.h: one endpoint of VMCI, as the kernel API sees it.
//
// The same interface serves a guest connection and a host connection to
// hostpeer (vmci::guest::Driver) and a host endpoint embedded in hostpeer's
// own process (vmci::host::EmbeddedEndpoint), so device proxies and the
// scenario runner drive all of them alike. Results are the kernel API's:
// VMCI status codes or byte counts; nothing throws.
//
// Threading: every call may be made from any thread. Callbacks run on the
// endpoint's own delivery thread, one at a time, never under a lock that a
// call needs, so a callback may call back into the endpoint.
//
//   vmci_handle h;
//   ep.datagram_create_handle(VMCI_INVALID_ID, 0, 0,
//       [](vmci_datagram* dg) { ...; return 0; }, &h);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "vmci/handle.h"
#include "vmci/proto/subscriptions.h"
#include "vmci/queue_pair.h"
#include "vmci/vmci_call_defs.h"

namespace vmci {

// Called with a datagram for one of the endpoint's handles; the payload
// follows the header, and both are valid only during the call.
using DatagramCallback = std::function<int(vmci_datagram* dg)>;
using EventCallback = proto::EventCallback;
// Called when one of the endpoint's doorbells was rung (several rings
// before it runs are one call, as in VMCI).
using DoorbellCallback = std::function<void()>;

class Endpoint {
 public:
  virtual ~Endpoint() = default;

  // The endpoint's context id: a guest's own id, VMCI_HOST_CONTEXT_ID for a
  // host endpoint, VMCI_INVALID_ID without a connection.
  virtual vmci_id get_context_id() = 0;

  // vmci_datagram_create_handle_priv (spec §3.4).
  virtual int datagram_create_handle(vmci_id resource, uint32_t flags, uint32_t priv_flags,
                                     DatagramCallback callback, vmci_handle* out) = 0;
  // Waits for a callback of this handle that is running on another thread.
  virtual int datagram_destroy_handle(vmci_handle handle) = 0;
  // vmci_datagram_send (spec §3.5): 24 + payload_size on success.
  virtual int datagram_send(const vmci_datagram* dg) = 0;

  virtual int event_subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) = 0;
  virtual int event_unsubscribe(vmci_id sub_id) = 0;

  // vmci_qpair_alloc (spec §6.2, §6.4, §6.5): creates the pair `*handle`
  // names (an invalid handle: a new one, written back), or attaches to it.
  // Sizes are the caller's own view: `produce_size` is the queue it
  // enqueues into. On success *qpair is the caller's endpoint.
  virtual int qpair_alloc(std::unique_ptr<QueuePair>* qpair, vmci_handle* handle,
                          uint64_t produce_size, uint64_t consume_size, vmci_id peer,
                          uint32_t flags, uint32_t priv_flags) = 0;
  // vmci_qpair_detach: *qpair is destroyed and null afterwards, whatever
  // the result (spec §11 item 17).
  virtual int qpair_detach(std::unique_ptr<QueuePair>* qpair) = 0;

  // vmci_doorbell_create (spec §5.1): an invalid *handle gets a new one
  // (written back). flags: 0 or VMCI_FLAG_DELAYED_CB (callbacks always run
  // on the delivery thread here).
  virtual int doorbell_create(vmci_handle* handle, uint32_t flags, uint32_t priv_flags,
                              DoorbellCallback callback) = 0;
  // Waits for a running callback of it (unless called from inside it).
  virtual int doorbell_destroy(vmci_handle handle) = 0;
  // vmci_doorbell_notify (spec §5.2): rings another endpoint's doorbell.
  virtual int doorbell_notify(vmci_handle handle, uint32_t priv_flags) = 0;

  // Testing aid: while held, nothing is delivered to callbacks; what
  // arrives waits inside the endpoint (datagrams stay pending in hostpeer's
  // accounting). release_callbacks() delivers what waited, in order, and
  // together: what hostpeer sent before the release (a connection's
  // ring-channel grants among it) is taken in first, so rings of one
  // doorbell that arrived while held, through hostpeer or through a ring
  // channel, come out as one callback. A release may wait for one round
  // trip to hostpeer; hold and release from one thread.
  virtual void hold_callbacks() = 0;
  virtual void release_callbacks() = 0;

  // False once the connection to hostpeer is gone; calls that need it then
  // return VMCI_ERROR_UNAVAILABLE at once.
  virtual bool connected() const = 0;
};

}  // namespace vmci
