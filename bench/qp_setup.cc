// qp_setup.cc: the qp_setup_rate trials (see qp_setup.h).
#include "qp_setup.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "count_window.h"
#include "endpoints.h"
#include "vmci/endpoint.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"
#include "vmci/queue_pair.h"

namespace bench {
namespace {

CountWindow window_of(const SetupParams& p) { return {p.warmup_s, p.window_s, p.stall_s}; }

// The guest's wait for the host's doorbell.
class Signal {
 public:
  void raise() {
    std::lock_guard lock(mutex_);
    raised_ = true;
    changed_.notify_one();
  }
  // True once raised (and lowers it), false after `timeout_s`.
  bool wait(double timeout_s) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                           [&] { return raised_; })) {
      return false;
    }
    raised_ = false;
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool raised_ = false;
};

// What the guest tells the host in its datagram.
struct SetupRequest {
  vmci_handle pair;
  vmci_handle doorbell;
};

}  // namespace

Measurement QpSetupBench::run_trial(const SetupParams& params) {
  ControlPage control;
  vmci::Endpoint* host = &embedded_.host();
  Control* shared = &control.get();
  // The host's side of a cycle, in its datagram callback: attach, detach,
  // ring the guest. A failure is kept for the measuring thread.
  auto on_request = [host, shared](vmci_datagram* dg) {
    SetupRequest request;
    if (dg->payload_size != sizeof request) return 0;
    std::memcpy(&request, VMCI_DG_PAYLOAD(dg), sizeof request);
    std::unique_ptr<vmci::QueuePair> qp;
    vmci_handle handle = request.pair;
    int64_t status = host->qpair_alloc(&qp, &handle, kSetupQueueSize, kSetupQueueSize,
                                       dg->src.context, 0, 0);
    if (status >= VMCI_SUCCESS) status = host->qpair_detach(&qp);
    if (status >= VMCI_SUCCESS) status = host->doorbell_notify(request.doorbell, 0);
    int64_t none = 0;
    if (status < VMCI_SUCCESS) shared->host_failure.compare_exchange_strong(none, status);
    return 0;
  };
  vmci_handle handle = VMCI_INVALID_HANDLE;
  if (const int s = host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, on_request, &handle);
      s < VMCI_SUCCESS) {
    throw std::runtime_error("host datagram_create_handle: " + result_text(s));
  }
  const DatagramHandleGuard guard{host, handle};

  ChildArgs args;
  args.transport = "qp-setup";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.socket_path = embedded_.socket_path();
  args.handle_context = handle.context;
  args.handle_resource = handle.resource;
  Child child(args.to_command(), {control.fd()});
  return count_child_cycles(control.get(), child, window_of(params), [&] {
    if (const int64_t failure = shared->host_failure.load(); failure != 0) {
      throw std::runtime_error("host side of a set-up cycle: " + result_text(failure));
    }
  });
}

void qp_setup_child(const ChildArgs& args, Control& control) {
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);
  Signal attached;
  vmci_handle doorbell = VMCI_INVALID_HANDLE;
  if (const int s = guest->doorbell_create(&doorbell, 0, 0, [&] { attached.raise(); });
      s < VMCI_SUCCESS) {
    throw std::runtime_error("guest doorbell_create: " + result_text(s));
  }
  vmci_handle own = VMCI_INVALID_HANDLE;
  if (const int s = guest->datagram_create_handle(VMCI_INVALID_ID, 0, 0,
                                                  [](vmci_datagram*) { return 0; }, &own);
      s < VMCI_SUCCESS) {
    throw std::runtime_error("guest datagram_create_handle: " + result_text(s));
  }
  std::vector<uint8_t> dg(sizeof(vmci_datagram) + sizeof(SetupRequest));
  auto* header = reinterpret_cast<vmci_datagram*>(dg.data());
  header->dst = VMCI_MAKE_HANDLE(args.handle_context, args.handle_resource);
  header->src = own;
  header->payload_size = sizeof(SetupRequest);
  while (control.stop.load(std::memory_order_acquire) == 0) {
    std::unique_ptr<vmci::QueuePair> qp;
    vmci_handle pair = VMCI_INVALID_HANDLE;
    int64_t s = guest->qpair_alloc(&qp, &pair, kSetupQueueSize, kSetupQueueSize,
                                   VMCI_HOST_CONTEXT_ID, 0, 0);
    if (s < VMCI_SUCCESS) throw std::runtime_error("guest qpair_alloc: " + result_text(s));
    const SetupRequest request{pair, doorbell};
    std::memcpy(dg.data() + sizeof(vmci_datagram), &request, sizeof request);
    s = guest->datagram_send(header);
    if (s < VMCI_SUCCESS) throw std::runtime_error("guest datagram_send: " + result_text(s));
    if (!attached.wait(10)) throw std::runtime_error("the host never answered a set-up");
    s = guest->qpair_detach(&qp);
    if (s < VMCI_SUCCESS) throw std::runtime_error("guest qpair_detach: " + result_text(s));
    control.cycles.fetch_add(1, std::memory_order_release);
  }
  guest->doorbell_destroy(doorbell);
}

namespace {

constexpr size_t kHandshakeSize = 2 * kSetupQueueSize + 2 * 4096;  // queues and headers
constexpr uint64_t kMark = 0x5645'5455'5053'4d51;

void send_byte(int fd) {
  const uint8_t byte = 1;
  while (::send(fd, &byte, 1, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) throw std::runtime_error(errno_text("send"));
  }
}

// A received descriptor, -1 at the end of the stream.
int receive_fd(int socket) {
  uint8_t byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char space[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = space;
  msg.msg_controllen = sizeof space;
  for (;;) {
    const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n == 0) return -1;
    if (n > 0) break;
    if (errno != EINTR) throw std::runtime_error(errno_text("recvmsg"));
  }
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) throw std::runtime_error("no descriptor came");
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

void send_fd(int socket, int fd) {
  uint8_t byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char space[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = space;
  msg.msg_controllen = sizeof space;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  while (::sendmsg(socket, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) throw std::runtime_error(errno_text("sendmsg"));
  }
}

}  // namespace

Measurement run_memfd_handshake_trial(const SetupParams& params) {
  ControlPage control;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(errno_text("socketpair"));
  }
  UniqueFd mine(fds[0]);
  UniqueFd theirs(fds[1]);
  ChildArgs args;
  args.transport = "memfd-handshake";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.data_fd = theirs.get();
  Child child(args.to_command(), {control.fd(), theirs.get()});
  theirs.reset();

  std::string failure;
  std::thread host([&] {
    try {
      for (;;) {
        const int received = receive_fd(mine.get());
        if (received < 0) return;
        UniqueFd fd(received);
        Mapping map(fd.get(), kHandshakeSize);
        uint64_t mark;
        std::memcpy(&mark, map.data(), sizeof mark);
        if (mark != kMark) throw std::runtime_error("the handed memory lacks its mark");
        send_byte(mine.get());
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  try {
    const Measurement m = count_child_cycles(control.get(), child, window_of(params), [] {});
    host.join();
    if (!failure.empty()) throw std::runtime_error(failure);
    return m;
  } catch (...) {
    ::shutdown(mine.get(), SHUT_RDWR);
    host.join();
    throw;
  }
}

void memfd_handshake_child(const ChildArgs& args, Control& control) {
  while (control.stop.load(std::memory_order_acquire) == 0) {
    UniqueFd fd = make_memfd("qp-setup", kHandshakeSize);
    Mapping map(fd.get(), kHandshakeSize);
    std::memcpy(map.data(), &kMark, sizeof kMark);
    send_fd(args.data_fd, fd.get());
    uint8_t byte;
    for (;;) {
      const ssize_t n = ::recv(args.data_fd, &byte, 1, 0);
      if (n == 1) break;
      if (n == 0) throw std::runtime_error("the parent closed the socket");
      if (errno != EINTR) throw std::runtime_error(errno_text("recv"));
    }
    control.cycles.fetch_add(1, std::memory_order_release);
  }
  ::close(args.data_fd);
}

}  // namespace bench
