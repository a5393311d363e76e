// echo-device: a small device proxy. It embeds hostpeer (guests connect to
// its socket), and serves an echo over queue pairs, woken by doorbells.
// Written only against the public API (vmci/host/hostpeer.h, vmci/endpoint.h).
//
//   echo-device SOCKET [--trace FILE]     (runs until SIGINT or SIGTERM)
//
// --trace FILE: hostpeer writes what it serves to FILE (vmci-scenario record).
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "protocol.h"
#include "vmci/host/hostpeer.h"

namespace {

// One guest's session: the host's end of its pair and its doorbell.
struct Session {
  std::unique_ptr<vmci::QueuePair> qp;
  vmci_handle guest_doorbell;
};

class EchoDevice {
 public:
  explicit EchoDevice(vmci::Endpoint& host) : host_(host) {}

  // A guest asks to open a session (runs on the delivery thread).
  int open(vmci_datagram* dg) {
    echo_open request;
    if (dg->payload_size != sizeof request) return VMCI_ERROR_INVALID_ARGS;
    std::memcpy(&request, VMCI_DG_PAYLOAD(dg), sizeof request);
    Session session;
    vmci_handle handle = request.queue_pair;
    const int status = host_.qpair_alloc(&session.qp, &handle, ECHO_QUEUE_SIZE, ECHO_QUEUE_SIZE,
                                         dg->src.context, VMCI_QPFLAG_ATTACH_ONLY, 0);
    if (status < VMCI_SUCCESS) {
      std::fprintf(stderr, "echo-device: attach to %u:%u failed: %d\n", handle.context,
                   handle.resource, status);
      return status;
    }
    session.guest_doorbell = request.doorbell;
    std::lock_guard lock(mutex_);
    sessions_[dg->src.context] = std::move(session);
    std::printf("echo-device: session with context %u\n", dg->src.context);
    std::fflush(stdout);
    return VMCI_SUCCESS;
  }

  // The device's doorbell rang: echo what every guest sent.
  void serve() {
    std::lock_guard lock(mutex_);
    std::vector<uint8_t> buf(ECHO_QUEUE_SIZE);
    for (auto& [cid, session] : sessions_) {
      bool echoed = false;
      for (;;) {
        // Never take more than can go back at once.
        const int64_t room = session.qp->produce_free_space();
        if (room <= 0) break;
        const int64_t n = session.qp->dequeue(buf.data(), static_cast<size_t>(room));
        if (n <= 0) break;
        session.qp->enqueue(buf.data(), static_cast<size_t>(n));
        echoed = true;
      }
      if (echoed) host_.doorbell_notify(session.guest_doorbell, 0);
    }
  }

  // A guest went away: its pair is detached.
  void close(vmci_id cid) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(cid);
    if (it == sessions_.end()) return;
    host_.qpair_detach(&it->second.qp);
    sessions_.erase(it);
    std::printf("echo-device: context %u gone\n", cid);
    std::fflush(stdout);
  }

 private:
  vmci::Endpoint& host_;
  std::mutex mutex_;
  std::map<vmci_id, Session> sessions_;
};

}  // namespace

int main(int argc, char** argv) {
  const bool traced = argc == 4 && std::strcmp(argv[2], "--trace") == 0;
  if (argc != 2 && !traced) {
    std::fprintf(stderr, "usage: %s SOCKET [--trace FILE]\n", argv[0]);
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  vmci::host::Options options;
  options.socket_path = argv[1];
  if (traced) options.trace_path = argv[3];
  std::string error;
  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) {
    std::fprintf(stderr, "echo-device: %s\n", error.c_str());
    return 1;
  }
  auto host = hostpeer->connect_host();
  EchoDevice device(*host);

  vmci_handle service;
  vmci_handle doorbell = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, ECHO_DEVICE_DOORBELL_RESOURCE);
  vmci_id removed_sub;
  if (host->datagram_create_handle(ECHO_DEVICE_DATAGRAM_RESOURCE, 0, 0,
                                   [&](vmci_datagram* dg) { return device.open(dg); },
                                   &service) < VMCI_SUCCESS ||
      host->doorbell_create(&doorbell, 0, 0, [&] { device.serve(); }) < VMCI_SUCCESS ||
      host->event_subscribe(
          VMCI_EVENT_CTX_REMOVED,
          [&](vmci_id, vmci_event_data* ed) {
            device.close(reinterpret_cast<vmci_event_payload_context*>(ed + 1)->context_id);
          },
          &removed_sub) < VMCI_SUCCESS) {
    std::fprintf(stderr, "echo-device: cannot set up its handles\n");
    return 1;
  }
  std::printf("echo-device: serving on %s\n", argv[1]);
  std::fflush(stdout);  // the line says its handles are there: guests may come
  int sig;
  sigwait(&stop, &sig);
  return 0;
}
