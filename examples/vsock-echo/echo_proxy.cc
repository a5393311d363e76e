// vsock-echo-proxy: a device proxy that embeds hostpeer and serves an echo
// service to guests on vSockets port 1234, written with Boost.Asio
// coroutines over vmci::vsock::asio.
//
//   vsock-echo-proxy SOCKET     (guests connect to SOCKET; SIGINT stops it)
#include <utility>  // before Boost 1.74's awaitable.hpp, which needs it
#include <boost/asio.hpp>
#include <cstdio>
#include <vmci/host/hostpeer.h>
#include <vmci/vsock/asio.h>

namespace net = boost::asio;
using vmci::vsock::asio::stream;

net::awaitable<void> echo(stream s) {
  char buf[4096];
  for (boost::system::error_code ec;;) {
    size_t n = co_await s.async_read_some(net::buffer(buf), net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return;  // the guest is done (eof) or gone
    co_await net::async_write(s, net::buffer(buf, n), net::use_awaitable);
  }
}

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: vsock-echo-proxy SOCKET\n"), 2;
  vmci::host::Options options;
  options.socket_path = argv[1];
  std::string error;
  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) return std::fprintf(stderr, "%s\n", error.c_str()), 1;
  auto host = hostpeer->connect_host();
  std::error_code ec;
  auto vsock = vmci::vsock::Transport::open(*host, {}, ec);
  net::io_context io;
  vmci::vsock::asio::acceptor acceptor(io.get_executor(), vsock->listen(1234, 16, ec));
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    for (;;) net::co_spawn(io, echo(co_await acceptor.async_accept(net::use_awaitable)), net::detached);
  }, net::detached);
  net::signal_set stop(io, SIGINT, SIGTERM);
  stop.async_wait([&](auto, int) { io.stop(); });
  std::printf("vsock echo on port 1234 of %s\n", argv[1]);
  std::fflush(stdout);
  io.run();
}
