// vsock_baselines.cc: the Unix-domain baselines of the vSockets figures
// (see vsock_baselines.h).
#include "vsock_baselines.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fd_stream.h"
#include "rtt.h"
#include "server_thread.h"

namespace bench {
namespace {

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) throw std::runtime_error("socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

UniqueFd stream_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw std::runtime_error(errno_text("socket"));
  return fd;
}

}  // namespace

Measurement run_unix_connect_trial(const CountWindow& window) {
  TempDir dir;
  const std::string path = dir.path() + "/listen.sock";
  UniqueFd listening = stream_socket();
  const sockaddr_un address = unix_address(path);
  if (::bind(listening.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throw std::runtime_error(errno_text("bind " + path));
  }
  if (::listen(listening.get(), 16) != 0) throw std::runtime_error(errno_text("listen"));

  ControlPage control;
  ChildArgs args;
  args.transport = "unix-connect";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.socket_path = path;
  Child child(args.to_command(), {control.fd()});
  // This process's side of a cycle: accept, close. Shutting the listening
  // socket down ends a blocked accept().
  ServerThread server(
      [&](const std::atomic<bool>&) {
        UniqueFd fd(::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (fd.get() < 0 && errno == EINTR) return;
        if (fd.get() < 0) throw std::runtime_error(errno_text("accept"));
      },
      [&] { ::shutdown(listening.get(), SHUT_RDWR); });
  return count_child_cycles(control.get(), child, window, [&] { server.check(); });
}

void unix_connect_child(const ChildArgs& args, Control& control) {
  const sockaddr_un address = unix_address(args.socket_path);
  while (control.stop.load(std::memory_order_acquire) == 0) {
    UniqueFd fd = stream_socket();
    while (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      if (errno != EINTR) throw std::runtime_error(errno_text("connect " + args.socket_path));
    }
    // The parent accepts and closes: the end of the stream.
    uint8_t byte;
    if (FdStream{fd.get()}.read_exactly(&byte, 1)) {
      throw std::runtime_error("unix connect: data on a connection that carries none");
    }
    fd.reset();
    control.cycles.fetch_add(1, std::memory_order_release);
  }
}

IdleCost run_unix_idle_trial(const IdleParams& params, const std::set<pid_t>& host_threads) {
  ControlPage control;
  std::vector<UniqueFd> mine, theirs;
  std::vector<int> inherit{control.fd()};
  for (int i = 0; i < params.connections; ++i) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      throw std::runtime_error(errno_text("socketpair"));
    }
    mine.emplace_back(fds[0]);
    theirs.emplace_back(fds[1]);
    inherit.push_back(fds[1]);
  }
  ChildArgs args;
  args.transport = "unix-idle";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  Child child(args.to_command(), inherit);
  theirs.clear();  // the child holds those ends now
  wait_until_ready(control.get(), child);
  const IdleCost cost = measure_idle(host_threads, child.pid(), params);
  child.check_running();
  stop_child(control.get());
  child.wait_success(30);
  return cost;
}

void unix_idle_child(const ChildArgs&, Control& control) {
  // The socketpairs' ends came over exec; holding them is all there is.
  say_ready(control);
  wait_for_stop(control, [] {}, std::chrono::hours(24));
}

}  // namespace bench
