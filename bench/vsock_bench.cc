// vsock_bench.cc: ours of the vSockets figures (see vsock_bench.h).
#include "vsock_bench.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "messages.h"
#include "server_thread.h"
#include "vmci/vmci_defs.h"
#include "vmci/vsock/transport.h"

namespace bench {
namespace {

using std::chrono::milliseconds;
using vmci::vsock::Listener;
using vmci::vsock::Stream;
using vmci::vsock::Transport;

// How long this process's blocking calls sleep before they look at the
// child (the guest's sleep without a limit: it dies with this process).
constexpr milliseconds kLook{50};
// How long a guest's blocked call waits before the trial fails.
constexpr milliseconds kStall{10000};

bool timed_out(const std::error_code& ec) {
  return ec == std::errc::resource_unavailable_try_again;
}

std::shared_ptr<Transport> open_vsock(vmci::Endpoint& endpoint, const char* side) {
  vmci::vsock::TransportOptions options;
  options.log = [side](const std::string& line) {
    std::fprintf(stderr, "vmci-bench (%s vSockets): %s\n", side, line.c_str());
  };
  std::error_code ec;
  auto vsock = Transport::open(endpoint, options, ec);
  if (!vsock) throw std::runtime_error(std::string(side) + " vsock open: " + ec.message());
  return vsock;
}

std::unique_ptr<Stream> connect_to_host(Transport& vsock, uint32_t port) {
  std::error_code ec;
  auto stream = vsock.connect({VMCI_HOST_CONTEXT_ID, port}, ec);
  if (!stream) {
    throw std::runtime_error("guest vsock connect to 2:" + std::to_string(port) + ": " +
                             ec.message());
  }
  return stream;
}

// A vSockets stream as a stream.h channel. recv: 0 when nothing came
// within `wait` (the consumer then looks at the child) or at the end of
// the stream; send: throws if there was no room for `wait`.
struct VsockChannel {
  Stream& stream;
  milliseconds wait;
  int64_t send(const void* buf, size_t n) {
    std::error_code ec;
    const size_t put = stream.write_some(buf, n, wait, ec);
    if (ec) throw std::runtime_error("vsock write_some: " + ec.message());
    return static_cast<int64_t>(put);
  }
  int64_t recv(void* buf, size_t n) {
    std::error_code ec;
    const size_t got = stream.read_some(buf, n, wait, ec);
    if (timed_out(ec)) return 0;
    if (ec) throw std::runtime_error("vsock read_some: " + ec.message());
    return static_cast<int64_t>(got);
  }
};

// A vSockets stream as a messages.h channel. A read waits without limit
// (`wait` nullopt), or in turns of `wait`, calling `waited(seconds so far)`
// (which may throw) after each turn that brought nothing.
struct VsockMessages {
  Stream& stream;
  vmci::vsock::Timeout wait;
  std::function<void(double waited_s)> waited;

  void write_all(const uint8_t* buf, size_t size) {
    std::error_code ec;
    stream.write_all(buf, size, ec, kStall);
    if (ec) throw std::runtime_error("vsock write_all: " + ec.message());
  }
  bool read_exactly(uint8_t* buf, size_t size) {
    int turns = 0;
    for (size_t off = 0; off < size;) {
      std::error_code ec;
      const size_t n = stream.read_some(buf + off, size - off, wait, ec);
      if (timed_out(ec)) {
        waited(std::chrono::duration<double>(*wait).count() * ++turns);
        continue;
      }
      if (ec) throw std::runtime_error("vsock read_some: " + ec.message());
      if (n == 0) {
        if (off == 0) return false;
        throw std::runtime_error("vsock: the stream ended inside a message");
      }
      off += n;
    }
    return true;
  }
};

// What a host read does while the guest is silent: looks at the child, and
// gives up after `stall_s`.
std::function<void(double)> watch(Child& child, double stall_s) {
  return [&child, stall_s](double waited_s) {
    child.check_running();
    if (waited_s > stall_s) {
      throw std::runtime_error("vsock: nothing from the guest for " + std::to_string(stall_s) +
                               " s");
    }
  };
}

// The guest's side of every trial: a Driver, and vSockets on it (declared
// after it: it goes first).
struct GuestVsock {
  std::unique_ptr<vmci::guest::Driver> driver;
  std::shared_ptr<Transport> vsock;
  explicit GuestVsock(const ChildArgs& args)
      : driver(connect_driver(args.socket_path, vmci::proto::Role::kGuest)),
        vsock(open_vsock(*driver, "guest")) {}
};

// A trial's host side: a listener on an ephemeral port and the guest child
// that connects to it.
class HostTrial {
 public:
  // Listens (room for `backlog` connections not accepted yet), then starts
  // the child `args` (its port, control page and hostpeer socket filled in).
  HostTrial(Transport& vsock, const EmbeddedHostpeer& embedded, ChildArgs args, int backlog) {
    std::error_code ec;
    listener_ = vsock.listen(vmci::vsock::kPortAny, backlog, ec);
    if (!listener_) throw std::runtime_error("host vsock listen: " + ec.message());
    args.parent = ::getpid();
    args.control_fd = control_.fd();
    args.socket_path = embedded.socket_path();
    args.port = listener_->local_address().port;
    child_.emplace(args.to_command(), std::vector<int>{control_.fd()});
  }

  Control& control() const { return control_.get(); }
  Child& child() { return *child_; }
  Listener& listener() { return *listener_; }

  // The next connection, looking at the child while none comes; throws
  // after `stall_s` without one.
  std::unique_ptr<Stream> accept(double stall_s) {
    const auto give_up =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(stall_s);
    for (;;) {
      std::error_code ec;
      if (auto stream = listener_->accept(kLook, ec)) return stream;
      if (!timed_out(ec)) throw std::runtime_error("host vsock accept: " + ec.message());
      child_->check_running();
      if (std::chrono::steady_clock::now() > give_up) {
        throw std::runtime_error("no vsock connection came");
      }
    }
  }

 private:
  ControlPage control_;
  std::unique_ptr<Listener> listener_;
  std::optional<Child> child_;  // last: killed before the listener closes
};

ChildArgs child_args(const char* transport) {
  ChildArgs args;
  args.transport = transport;
  return args;
}

}  // namespace

VsockBench::VsockBench()
    : threads_before_(thread_ids(::getpid())), vsock_(open_vsock(embedded_.host(), "host")) {
  std::ranges::set_difference(thread_ids(::getpid()), threads_before_,
                              std::inserter(host_threads_, host_threads_.end()));
  if (host_threads_.empty()) throw std::runtime_error("vsock: the host side started no thread");
}

VsockBench::~VsockBench() = default;

Measurement VsockBench::run_stream_trial(const StreamParams& params) {
  ChildArgs args = child_args("vsock-stream");
  args.chunk = params.chunk;
  args.every_byte = params.every_byte;
  HostTrial trial(*vsock_, embedded_, args, 1);
  auto stream = trial.accept(params.stall_s);
  VsockChannel channel{*stream, kLook};
  const Measurement m = consume(channel, trial.control(), trial.child(), params);
  trial.child().wait_success(30);
  return m;
}

void vsock_stream_child(const ChildArgs& args, Control& control) {
  GuestVsock guest(args);
  auto stream = connect_to_host(*guest.vsock, args.port);
  VsockChannel channel{*stream, kStall};
  produce(channel, control, args.chunk, args.every_byte);
  // done is published: the reader may now see the end of the stream.
  if (const std::error_code ec = stream->shutdown(vmci::vsock::kSendShutdown)) {
    throw std::runtime_error("vsock shutdown: " + ec.message());
  }
  wait_for_consumer(control);
}

RttResult VsockBench::run_rr_trial(const RttParams& params, size_t message) {
  if (message < 1 || message > kMaxMessage) throw std::runtime_error("bad vsock message size");
  ChildArgs args = child_args("vsock-rr");
  args.chunk = message;
  HostTrial trial(*vsock_, embedded_, args, 1);
  auto stream = trial.accept(params.stall_s);
  VsockMessages channel{*stream, kLook, watch(trial.child(), params.stall_s)};
  std::vector<uint8_t> buf(message);
  uint64_t round = 0;
  const RttResult r =
      time_round_trips(params, {{"host", ::getpid()}, {"guest", trial.child().pid()}},
                       [&] { ask(channel, buf, ++round); });
  stream->close();  // the guest reads the end of the stream and exits
  trial.child().wait_success(30);
  return r;
}

void vsock_rr_child(const ChildArgs& args, Control&) {
  GuestVsock guest(args);
  auto stream = connect_to_host(*guest.vsock, args.port);
  VsockMessages channel{*stream, std::nullopt, {}};
  answer_until_end(channel, args.chunk);
}

Measurement VsockBench::run_connect_trial(const CountWindow& window) {
  HostTrial trial(*vsock_, embedded_, child_args("vsock-connect"), 16);
  // This process's side of a cycle: accept, close.
  ServerThread server([&](const std::atomic<bool>&) {
    std::error_code ec;
    auto stream = trial.listener().accept(kLook, ec);
    if (timed_out(ec)) return;
    if (!stream) throw std::runtime_error("host vsock accept: " + ec.message());
  });
  return count_child_cycles(trial.control(), trial.child(), window, [&] { server.check(); });
}

void vsock_connect_child(const ChildArgs& args, Control& control) {
  GuestVsock guest(args);
  while (control.stop.load(std::memory_order_acquire) == 0) {
    auto stream = connect_to_host(*guest.vsock, args.port);
    // The host accepts and closes: the end of the stream.
    uint8_t byte;
    VsockMessages channel{*stream, kStall, [](double) {
                            throw std::runtime_error("vsock connect: the host never closed");
                          }};
    if (channel.read_exactly(&byte, 1)) {
      throw std::runtime_error("vsock connect: data on a connection that carries none");
    }
    stream->close();
    control.cycles.fetch_add(1, std::memory_order_release);
  }
}

IdleCost VsockBench::run_idle_trial(const IdleParams& params) {
  ChildArgs args = child_args("vsock-idle");
  args.connections = params.connections;
  HostTrial trial(*vsock_, embedded_, args, params.connections);
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < params.connections; ++i) streams.push_back(trial.accept(10));
  wait_until_ready(trial.control(), trial.child());
  const IdleCost cost = measure_idle(host_threads_, trial.child().pid(), params);
  trial.child().check_running();
  for (const auto& stream : streams) {
    if (stream->peer_shutdown() != 0) throw std::runtime_error("vsock idle: a connection ended");
  }
  stop_child(trial.control());
  trial.child().wait_success(30);
  return cost;
}

void vsock_idle_child(const ChildArgs& args, Control& control) {
  GuestVsock guest(args);
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < args.connections; ++i) {
    streams.push_back(connect_to_host(*guest.vsock, args.port));
  }
  say_ready(control);
  // Asleep until stopped, with no timeout, so that every wake-up counted is
  // the connections' (this process dies with the parent).
  wait_for_stop(control, [] {}, std::chrono::hours(24));
  for (const auto& stream : streams) {
    if (stream->peer_shutdown() != 0) throw std::runtime_error("vsock idle: a connection ended");
  }
}

}  // namespace bench
