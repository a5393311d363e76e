// qpair_throughput.cc: the queue-pair trial (see qpair_throughput.h).
#include "qpair_throughput.h"

#include "endpoints.h"

#include <unistd.h>

#include <stdexcept>
#include <string>

#include "vmci/endpoint.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"
#include "vmci/queue_pair.h"

namespace bench {
namespace {

// Detaches a pair through its endpoint when the trial ends, however it ends.
struct Attachment {
  vmci::Endpoint* endpoint;
  std::unique_ptr<vmci::QueuePair> qp;
  ~Attachment() {
    if (qp) endpoint->qpair_detach(&qp);
  }
};

// The host endpoint dequeues. Before the guest has attached (it is starting
// up) its calls return QUEUEPAIR_NOTATTACHED: that is "nothing yet" until
// the first byte, a failure afterwards.
struct HostConsumer {
  vmci::QueuePair* qp;
  bool started = false;
  int64_t recv(void* buf, size_t n) {
    const int64_t r = qp->dequeue(buf, n);
    if (r > 0) {
      started = true;
      return r;
    }
    if (r == VMCI_ERROR_QUEUEPAIR_NODATA) return 0;
    if (r == VMCI_ERROR_QUEUEPAIR_NOTATTACHED && !started) return 0;
    throw std::runtime_error("host dequeue: " + result_text(r));
  }
};

// The guest endpoint enqueues.
struct GuestProducer {
  vmci::QueuePair* qp;
  int64_t send(const void* buf, size_t n) {
    const int64_t r = qp->enqueue(buf, n);
    if (r > 0) return r;
    if (r == VMCI_ERROR_QUEUEPAIR_NOSPACE) return 0;
    throw std::runtime_error("guest enqueue: " + result_text(r));
  }
};

}  // namespace

Measurement QpairBench::run_trial(const StreamParams& params) {
  ControlPage control;
  Attachment pair{&embedded_.host(), nullptr};
  vmci_handle handle = VMCI_INVALID_HANDLE;
  const int status =
      embedded_.host().qpair_alloc(&pair.qp, &handle, kPairQueueSize, kPairQueueSize, VMCI_INVALID_ID, 0, 0);
  if (status < VMCI_SUCCESS) throw std::runtime_error("host qpair_alloc: " + result_text(status));

  ChildArgs args;
  args.transport = "qpair";
  args.parent = ::getpid();
  args.chunk = params.chunk;
  args.control_fd = control.fd();
  args.socket_path = embedded_.socket_path();
  args.handle_context = handle.context;
  args.handle_resource = handle.resource;
  Child child(args.to_command(), {control.fd()});

  HostConsumer consumer{pair.qp.get()};
  const Measurement m = consume(consumer, control.get(), child, params);
  child.wait_success(30);
  return m;
}

void qpair_child(const ChildArgs& args, Control& control) {
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);

  // The host's sizes, swapped: the guest produces into the host's consume queue.
  const uint64_t host_produce = kPairQueueSize, host_consume = kPairQueueSize;
  vmci_handle handle = VMCI_MAKE_HANDLE(args.handle_context, args.handle_resource);
  Attachment pair{guest.get(), nullptr};
  const int status = guest->qpair_alloc(&pair.qp, &handle, host_consume, host_produce, VMCI_INVALID_ID, 0, 0);
  if (status < VMCI_SUCCESS) throw std::runtime_error("guest qpair_alloc: " + result_text(status));

  GuestProducer producer{pair.qp.get()};
  produce(producer, control, args.chunk);
  wait_for_consumer(control);
}

}  // namespace bench
