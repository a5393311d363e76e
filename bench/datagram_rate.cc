// datagram_rate.cc: the datagram_rate_64B trials (see datagram_rate.h).
#include "datagram_rate.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "count_window.h"
#include "endpoints.h"
#include "vmci/endpoint.h"
#include "vmci/host/hostpeer.h"
#include "vmci/proto/names.h"

namespace bench {
namespace {

using detail::Clock;

// What the consumer side saw: datagrams in order with their stamps intact,
// and how many were not.
struct Received {
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> wrong{0};

  // One consumer thread at a time.
  void take(const uint8_t* payload, size_t size, size_t expected_size) {
    const uint64_t seq = count.load(std::memory_order_relaxed);
    uint64_t first = 0, last = 0;
    if (size == expected_size) {
      std::memcpy(&first, payload, sizeof first);
      std::memcpy(&last, payload + size - sizeof last, sizeof last);
    }
    if (size != expected_size || first != seq || last != ~seq) {
      wrong.fetch_add(1, std::memory_order_relaxed);
    }
    count.store(seq + 1, std::memory_order_release);
  }
};

void sleep_for(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

Measurement measure(const Received& received, Child& child, const RateParams& p) {
  Measurement m = count_window([&] { return received.count.load(std::memory_order_acquire); },
                               child, {p.warmup_s, p.window_s, p.stall_s}, [] {});
  m.bytes = m.chunks * p.payload;
  return m;
}

// After the window: stops the producer and waits until every datagram it
// sent has arrived intact.
void finish(Control& control, const Received& received, Child& child, const RateParams& p) {
  control.stop.store(1, std::memory_order_release);
  const auto give_up = Clock::now() + std::chrono::duration<double>(p.stall_s);
  while (control.done.load(std::memory_order_acquire) == 0 ||
         received.count.load(std::memory_order_acquire) < control.final_chunks) {
    if (Clock::now() > give_up) {
      throw std::runtime_error("datagrams: " + std::to_string(received.count.load()) +
                               " arrived of " + std::to_string(control.final_chunks) + " sent");
    }
    sleep_for(0.0002);
  }
  if (received.count.load() != control.final_chunks) {
    throw std::runtime_error("more datagrams arrived than were sent");
  }
  if (received.wrong.load() != 0) {
    throw std::runtime_error(std::to_string(received.wrong.load()) +
                             " datagrams arrived out of order or with wrong stamps");
  }
  control.consumer_done.store(1, std::memory_order_release);
  child.wait_success(30);
}

// The producers' loop: `send` returns true once the datagram is taken.
template <typename Send>
void produce_datagrams(Control& control, size_t payload, Send&& send) {
  std::vector<uint8_t> buf(payload);
  for (size_t i = 0; i < payload; ++i) buf[i] = static_cast<uint8_t>(i * 131 + 7);
  uint64_t seq = 0;
  while (control.stop.load(std::memory_order_relaxed) == 0) {
    detail::stamp(buf.data(), payload, seq);
    if (send(buf)) {
      ++seq;
    } else {
      detail::cpu_relax();
    }
  }
  control.final_chunks = seq;
  control.done.store(1, std::memory_order_release);
}

// A new datagram handle of `consumer` whose callback checks and counts
// into `received`.
vmci_handle counting_handle(vmci::Endpoint& consumer, Received& received, size_t payload) {
  vmci_handle handle = VMCI_INVALID_HANDLE;
  const int status = consumer.datagram_create_handle(
      VMCI_INVALID_ID, 0, 0,
      [&received, payload](vmci_datagram* dg) {
        received.take(static_cast<const uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                      static_cast<size_t>(dg->payload_size), payload);
        return 0;
      },
      &handle);
  if (status < VMCI_SUCCESS) {
    throw std::runtime_error("datagram_create_handle: " + vmci::proto::describe_result(status));
  }
  return handle;
}

// The producing child's loop: stamped datagrams from a new handle of
// `endpoint` to args' handle.
void send_datagrams(vmci::Endpoint& endpoint, const ChildArgs& args, Control& control) {
  vmci_handle own = VMCI_INVALID_HANDLE;
  const int status = endpoint.datagram_create_handle(VMCI_INVALID_ID, 0, 0,
                                                     [](vmci_datagram*) { return 0; }, &own);
  if (status < VMCI_SUCCESS) {
    throw std::runtime_error("datagram_create_handle: " + vmci::proto::describe_result(status));
  }
  std::vector<uint8_t> dg(sizeof(vmci_datagram) + args.chunk);
  auto* header = reinterpret_cast<vmci_datagram*>(dg.data());
  header->dst = VMCI_MAKE_HANDLE(args.handle_context, args.handle_resource);
  header->src = own;
  header->payload_size = args.chunk;
  const int expected = static_cast<int>(dg.size());
  produce_datagrams(control, args.chunk, [&](const std::vector<uint8_t>& payload) {
    std::memcpy(dg.data() + sizeof(vmci_datagram), payload.data(), payload.size());
    const int result = endpoint.datagram_send(header);
    if (result == expected) return true;
    if (result == VMCI_ERROR_NO_RESOURCES) return false;  // the consumer is behind: again
    throw std::runtime_error("datagram_send: " + vmci::proto::describe_result(result));
  });
  wait_for_consumer(control);
}

}  // namespace

Measurement DatagramRateBench::run_trial(const RateParams& params) {
  return run_into(embedded_.host(), "datagram", params);
}

Measurement DatagramRateBench::run_host_to_guest_trial(const RateParams& params) {
  if (!guest_) guest_ = connect_driver(embedded_.socket_path(), vmci::proto::Role::kGuest);
  return run_into(*guest_, "datagram-from-host", params);
}

Measurement DatagramRateBench::run_host_to_host_trial(const RateParams& params) {
  return run_into(embedded_.host(), "datagram-from-host", params);
}

Measurement DatagramRateBench::run_into(vmci::Endpoint& consumer, const std::string& transport,
                                        const RateParams& params) {
  ControlPage control;
  Received received;
  const vmci_handle handle = counting_handle(consumer, received, params.payload);
  const DatagramHandleGuard guard{&consumer, handle};

  ChildArgs args;
  args.transport = transport;
  args.parent = ::getpid();
  args.chunk = params.payload;
  args.control_fd = control.fd();
  args.socket_path = embedded_.socket_path();
  args.handle_context = handle.context;
  args.handle_resource = handle.resource;
  Child child(args.to_command(), {control.fd()});
  const Measurement m = measure(received, child, params);
  finish(control.get(), received, child, params);
  return m;
}

void datagram_child(const ChildArgs& args, Control& control) {
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);
  send_datagrams(*guest, args, control);
}

void host_datagram_child(const ChildArgs& args, Control& control) {
  auto host = connect_driver(args.socket_path, vmci::proto::Role::kHost);
  send_datagrams(*host, args, control);
}

Measurement run_seqpacket_trial(const RateParams& params) {
  ControlPage control;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(errno_text("socketpair"));
  }
  UniqueFd mine(fds[0]);
  UniqueFd theirs(fds[1]);
  ChildArgs args;
  args.transport = "seqpacket";
  args.parent = ::getpid();
  args.chunk = params.payload;
  args.control_fd = control.fd();
  args.data_fd = theirs.get();
  Child child(args.to_command(), {control.fd(), theirs.get()});
  theirs.reset();  // so the child's close ends the stream

  Received received;
  std::string failure;
  std::thread consumer([&] {
    std::vector<uint8_t> buf(params.payload + 1);
    for (;;) {
      const ssize_t n = ::recv(mine.get(), buf.data(), buf.size(), 0);
      if (n == 0) return;  // the child closed its end
      if (n < 0) {
        if (errno == EINTR) continue;
        failure = errno_text("recv");
        return;
      }
      received.take(buf.data(), static_cast<size_t>(n), params.payload);
    }
  });
  try {
    const Measurement m = measure(received, child, params);
    finish(control.get(), received, child, params);
    consumer.join();
    if (!failure.empty()) throw std::runtime_error(failure);
    return m;
  } catch (...) {
    ::shutdown(mine.get(), SHUT_RDWR);  // the consumer's recv returns
    consumer.join();
    throw;
  }
}

void seqpacket_child(const ChildArgs& args, Control& control) {
  produce_datagrams(control, args.chunk, [&](const std::vector<uint8_t>& payload) {
    for (;;) {
      if (::send(args.data_fd, payload.data(), payload.size(), 0) >= 0) return true;
      if (errno != EINTR) throw std::runtime_error(errno_text("send"));
    }
  });
  wait_for_consumer(control);
  ::close(args.data_fd);
}

}  // namespace bench
