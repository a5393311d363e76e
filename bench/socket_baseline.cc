// socket_baseline.cc: the socketpair baseline (see socket_baseline.h).
#include "socket_baseline.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace bench {
namespace {

// A blocking stream socket as a channel: write() and read() return when
// they have moved something (read: 0 at end of stream, "nothing now"); an
// error throws.
struct SocketChannel {
  int fd;
  int64_t send(const void* buf, size_t n) {
    for (;;) {
      const ssize_t r = ::write(fd, buf, n);
      if (r >= 0) return r;
      if (errno != EINTR) throw std::runtime_error(errno_text("write"));
    }
  }
  int64_t recv(void* buf, size_t n) {
    for (;;) {
      const ssize_t r = ::read(fd, buf, n);
      if (r >= 0) return r;
      if (errno != EINTR) throw std::runtime_error(errno_text("read"));
    }
  }
};

}  // namespace

Measurement run_socket_trial(const StreamParams& params) {
  ControlPage control;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(errno_text("socketpair"));
  }
  UniqueFd mine(fds[0]);
  UniqueFd theirs(fds[1]);

  ChildArgs args;
  args.transport = "socket";
  args.parent = ::getpid();
  args.chunk = params.chunk;
  args.every_byte = params.every_byte;
  args.control_fd = control.fd();
  args.data_fd = theirs.get();
  Child child(args.to_command(), {control.fd(), theirs.get()});
  theirs.reset();  // so the child's close ends the stream

  SocketChannel channel{mine.get()};
  const Measurement m = consume(channel, control.get(), child, params);
  child.wait_success(30);
  return m;
}

void socket_child(const ChildArgs& args, Control& control) {
  SocketChannel channel{args.data_fd};
  produce(channel, control, args.chunk, args.every_byte);
  // done is published: the reader may now see the end of the stream.
  ::shutdown(args.data_fd, SHUT_WR);
  wait_for_consumer(control);
}

}  // namespace bench
