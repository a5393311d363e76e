// libvmci-vsock-preload.so: the AF_VSOCK calls of an unmodified program,
// sent to vmci-vsock-run's broker (../src/broker_protocol.h) instead of
// the kernel. Loaded with LD_PRELOAD by vmci-vsock-run, in the program and
// in everything it starts.
//
// A vSockets descriptor is a real Unix socket (the broker holds the other
// end), so read, write, poll, select, epoll, fork, dup and exec work on it
// as the kernel does them; this library takes only what a Unix socket
// would answer differently: the socket calls with addresses and options,
// and the reads and writes of datagram sockets (each datagram travels
// behind a header naming its peer). It recognises a descriptor as a
// vSockets one by its kernel-given name, so nothing here must survive an
// exec. An AF_VSOCK call it cannot serve fails with an errno; it is never
// passed to the kernel (whose AF_VSOCK the launcher's filter refuses too).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <optional>

#include "../src/broker_protocol.h"

namespace {

using vmci::vsock_run::DatagramHeader;
using vmci::vsock_run::Op;
using vmci::vsock_run::Reply;
using vmci::vsock_run::Request;

// The next definition of each function we take (libc's).
template <typename F>
F real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}
#define REAL(name)                                               \
  ([] {                                                          \
    static const auto found = real<decltype(&::name)>(#name);    \
    return found;                                                \
  }())

// What a descriptor is, for the calls taken on every descriptor (read,
// write, send, recv): found once, forgotten when the number is closed or
// replaced.
enum class Kind : uint8_t { kUnknown = 0, kOther, kStream, kDatagram };
constexpr int kCachedFds = 65536;
std::atomic<uint8_t> kinds[kCachedFds];

void forget(int fd) {
  if (fd >= 0 && fd < kCachedFds) kinds[fd].store(0, std::memory_order_relaxed);
}

long broker_pid() {
  const char* pid = ::getenv(vmci::vsock_run::kBrokerPidEnv);
  return pid != nullptr ? ::strtol(pid, nullptr, 10) : -1;
}

// The vSockets socket id of `fd`, if it is one of the broker's.
struct Identity {
  uint64_t id;
  Kind kind;
};
std::optional<Identity> identify(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (REAL(getsockname)(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      addr.sun_family != AF_UNIX || len <= offsetof(sockaddr_un, sun_path)) {
    return std::nullopt;
  }
  const auto id = vmci::vsock_run::id_of_end_name(
      addr.sun_path, len - offsetof(sockaddr_un, sun_path), broker_pid());
  if (!id) return std::nullopt;
  int type = 0;
  socklen_t type_len = sizeof type;
  REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &type_len);
  return Identity{*id, type == SOCK_STREAM ? Kind::kStream : Kind::kDatagram};
}

Kind kind_of(int fd) {
  if (fd >= 0 && fd < kCachedFds) {
    const auto known = static_cast<Kind>(kinds[fd].load(std::memory_order_relaxed));
    if (known != Kind::kUnknown) return known;
  }
  const auto identity = identify(fd);
  const Kind kind = identity ? identity->kind : Kind::kOther;
  if (fd >= 0 && fd < kCachedFds) kinds[fd].store(static_cast<uint8_t>(kind));
  return kind;
}

int fail(int errno_value) {
  errno = errno_value;
  return -1;
}

// One request to the broker on a connection of its own; the reply, with
// *received set to the descriptor it carries (or -1). `payload` (iovs)
// follows the request in its message. A transport failure is a reply of
// -EIO (-EINTR if a signal interrupted the wait and `interruptible`).
Reply call(const Request& request, int attach = -1, int* received = nullptr,
           const iovec* payload = nullptr, size_t payload_count = 0, bool interruptible = false) {
  Reply reply{};
  reply.result = -EIO;
  if (received != nullptr) *received = -1;
  const char* path = ::getenv(vmci::vsock_run::kBrokerEnv);
  if (path == nullptr) {
    reply.result = -EAFNOSUPPORT;  // not under vmci-vsock-run
    return reply;
  }
  const int s = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return reply;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (REAL(connect)(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    REAL(close)(s);
    return reply;
  }
  iovec iov[64];
  iov[0] = {const_cast<Request*>(&request), sizeof request};
  size_t count = 1;
  for (size_t i = 0; i < payload_count && count < 64; ++i) iov[count++] = payload[i];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  vmci::vsock_run::DescriptorControl control;
  vmci::vsock_run::attach_descriptor(msg, control, attach);
  ssize_t n;
  while ((n = REAL(sendmsg)(s, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (n < 0) {
    reply.result = -errno;  // EFAULT for a bad buffer: nothing was sent
    REAL(close)(s);
    return reply;
  }
  iovec in{&reply, sizeof reply};
  msghdr answer{};
  answer.msg_iov = &in;
  answer.msg_iovlen = 1;
  vmci::vsock_run::DescriptorControl answer_control;
  answer.msg_control = answer_control.bytes;
  answer.msg_controllen = sizeof answer_control.bytes;
  while ((n = REAL(recvmsg)(s, &answer, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
    if (interruptible) {
      REAL(close)(s);
      reply.result = -EINTR;
      return reply;
    }
  }
  if (n != static_cast<ssize_t>(sizeof reply)) reply.result = -EIO;
  int fd = n >= 0 ? vmci::vsock_run::attached_descriptor(answer) : -1;
  REAL(close)(s);
  if (fd >= 0 && received == nullptr) {
    REAL(close)(fd);
  } else if (fd >= 0) {
    // The lowest free number, as the kernel gives (systemd's socket
    // activation counts on it): the request's own socket is gone now.
    const int lowest = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (lowest >= 0 && lowest < fd) {
      REAL(close)(fd);
      fd = lowest;
    } else if (lowest >= 0) {
      REAL(close)(lowest);
    }
    *received = fd;
  }
  return reply;
}

Request request(Op op, uint64_t id = 0) {
  Request r{};
  r.op = op;
  r.id = id;
  return r;
}

// The result of a call as a system call returns it.
int result_of(const Reply& reply) {
  if (reply.result < 0) return fail(-reply.result);
  return reply.result;
}

// Copies an address out as the kernel does: at most *len bytes, *len set
// to the whole size; EFAULT for a null length, or a null address with room.
int put_address(uint32_t cid, uint32_t port, sockaddr* addr, socklen_t* len) {
  if (len == nullptr) return fail(EFAULT);
  if (static_cast<int>(*len) < 0) return fail(EINVAL);
  sockaddr_vm vm{};
  vm.svm_family = AF_VSOCK;
  vm.svm_cid = cid;
  vm.svm_port = port;
  const socklen_t n = *len < sizeof vm ? *len : sizeof vm;
  if (n > 0) {
    if (addr == nullptr) return fail(EFAULT);
    ::memcpy(addr, &vm, n);
  }
  *len = sizeof vm;
  return 0;
}

// Checks an address given to bind, connect or sendto.
int take_address(const sockaddr* addr, socklen_t len, uint32_t* cid, uint32_t* port) {
  if (addr == nullptr) return fail(EFAULT);
  if (len < sizeof(sockaddr_vm)) return fail(EINVAL);
  sockaddr_vm vm;
  ::memcpy(&vm, addr, sizeof vm);
  if (vm.svm_family != AF_VSOCK) return fail(EAFNOSUPPORT);
  *cid = vm.svm_cid;
  *port = vm.svm_port;
  return 0;
}

bool is_vsock_device(int fd) {
  char link[64], target[128];
  ::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  return ::strstr(target, "memfd:vmci-vsock-dev") != nullptr;
}

// What vSockets answer for receive flags a Unix socket would take
// otherwise (0: none of them): an empty error queue (MSG_ERRQUEUE: EAGAIN,
// as Linux's, which keeps only zerocopy notices there), no out-of-band data.
int refused_receive_flags(int flags) {
  if ((flags & MSG_ERRQUEUE) != 0) return EAGAIN;
  if ((flags & MSG_OOB) != 0) return EOPNOTSUPP;
  return 0;
}

// A datagram socket's send: the payload to the broker, which sends it.
ssize_t send_datagram(uint64_t id, const iovec* iov, size_t count, const sockaddr* to,
                      socklen_t to_len) {
  Request r = request(Op::kSendTo, id);
  r.cid = vmci::vsock_run::kCidAny;
  r.port = vmci::vsock_run::kPortAny;
  if (to != nullptr && take_address(to, to_len, &r.cid, &r.port) != 0) return -1;
  return result_of(call(r, -1, nullptr, iov, count));
}

// A datagram socket's receive: the header behind which it came, stripped.
ssize_t receive_datagram(int fd, msghdr* msg, int flags) {
  DatagramHeader header{};
  iovec iov[64];
  iov[0] = {&header, sizeof header};
  size_t count = 1;
  for (size_t i = 0; i < msg->msg_iovlen && count < 64; ++i) iov[count++] = msg->msg_iov[i];
  msghdr inner{};
  inner.msg_iov = iov;
  inner.msg_iovlen = count;
  const ssize_t n = REAL(recvmsg)(fd, &inner, flags & ~MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  if (n < static_cast<ssize_t>(sizeof header)) return 0;  // the end: none comes
  msg->msg_flags = inner.msg_flags;
  if (msg->msg_name != nullptr) {
    socklen_t len = msg->msg_namelen;
    put_address(header.cid, header.port, static_cast<sockaddr*>(msg->msg_name), &len);
    msg->msg_namelen = len;
  } else {
    msg->msg_namelen = 0;
  }
  msg->msg_controllen = 0;
  return n - static_cast<ssize_t>(sizeof header);
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
  if (domain != AF_VSOCK) return REAL(socket)(domain, type, protocol);
  const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (base != SOCK_STREAM && base != SOCK_DGRAM) return fail(ESOCKTNOSUPPORT);
  if (protocol != 0 && protocol != PF_VSOCK) return fail(EPROTONOSUPPORT);
  Request r = request(Op::kSocket);
  r.type = static_cast<uint32_t>(base);
  int fd = -1;
  const Reply reply = call(r, -1, &fd);
  if (reply.result < 0) return fail(-reply.result);
  if (fd < 0) return fail(EIO);
  if ((type & SOCK_CLOEXEC) == 0) ::fcntl(fd, F_SETFD, 0);
  if ((type & SOCK_NONBLOCK) != 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (fd < kCachedFds) {
    kinds[fd].store(static_cast<uint8_t>(base == SOCK_STREAM ? Kind::kStream : Kind::kDatagram));
  }
  return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
  if (domain == AF_VSOCK) return fail(EOPNOTSUPP);
  return REAL(socketpair)(domain, type, protocol, sv);
}

int bind(int fd, const sockaddr* addr, socklen_t len) {
  const auto identity = identify(fd);
  if (!identity) return REAL(bind)(fd, addr, len);
  Request r = request(Op::kBind, identity->id);
  if (take_address(addr, len, &r.cid, &r.port) != 0) return -1;
  return result_of(call(r));
}

int listen(int fd, int backlog) {
  const auto identity = identify(fd);
  if (!identity) return REAL(listen)(fd, backlog);
  Request r = request(Op::kListen, identity->id);
  r.value = static_cast<uint64_t>(backlog < 0 ? 0 : backlog);
  return result_of(call(r));
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  const auto identity = identify(fd);
  if (!identity) return REAL(connect)(fd, addr, len);
  Request r = request(Op::kConnect, identity->id);
  if (identity->kind == Kind::kDatagram && addr != nullptr && len >= sizeof(sa_family_t) &&
      addr->sa_family == AF_UNSPEC) {
    r.cid = vmci::vsock_run::kCidAny;  // dissolves the association
    r.port = vmci::vsock_run::kPortAny;
    return result_of(call(r));
  }
  if (take_address(addr, len, &r.cid, &r.port) != 0) return -1;
  const bool nonblocking = (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
  if (nonblocking) r.flags |= vmci::vsock_run::kNonBlocking;
  return result_of(call(r, nonblocking ? fd : -1, nullptr, nullptr, 0, true));
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const auto identity = identify(fd);
  if (!identity) return REAL(accept4)(fd, addr, len, flags);
  if (identity->kind != Kind::kStream) return fail(EOPNOTSUPP);
  if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return fail(EINVAL);
  Request listening = request(Op::kGetOption, identity->id);
  listening.level = SOL_SOCKET;
  listening.name = SO_ACCEPTCONN;
  const Reply is = call(listening);
  if (is.result < 0) return fail(-is.result);
  if (is.value == 0) return fail(EINVAL);
  for (;;) {
    // One byte per connection to take: the kernel waits (or says EAGAIN,
    // or EINTR) as for any socket.
    uint8_t byte;
    const ssize_t n = REAL(recv)(fd, &byte, 1, 0);
    if (n < 0) return -1;
    if (n == 0) return fail(EINVAL);  // no longer listening
    int child = -1;
    const Reply reply = call(request(Op::kAccept, identity->id), -1, &child);
    if (reply.result == -EAGAIN) {
      if ((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0) return fail(EAGAIN);
      continue;  // that connection went before it was taken
    }
    if (reply.result < 0) return fail(-reply.result);
    if (child < 0) return fail(EIO);
    if ((flags & SOCK_CLOEXEC) == 0) ::fcntl(child, F_SETFD, 0);
    if ((flags & SOCK_NONBLOCK) != 0) ::fcntl(child, F_SETFL, ::fcntl(child, F_GETFL) | O_NONBLOCK);
    if (child < kCachedFds) kinds[child].store(static_cast<uint8_t>(Kind::kStream));
    if (addr != nullptr && len != nullptr && put_address(reply.cid, reply.port, addr, len) != 0) {
      const int why = errno;
      REAL(close)(child);
      return fail(why);
    }
    return child;
  }
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }

int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  const auto identity = identify(fd);
  if (!identity) return REAL(getsockname)(fd, addr, len);
  const Reply reply = call(request(Op::kLocalName, identity->id));
  if (reply.result < 0) return fail(-reply.result);
  return put_address(reply.cid, reply.port, addr, len);
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  const auto identity = identify(fd);
  if (!identity) return REAL(getpeername)(fd, addr, len);
  const Reply reply = call(request(Op::kPeerName, identity->id));
  if (reply.result < 0) return fail(-reply.result);
  return put_address(reply.cid, reply.port, addr, len);
}

int shutdown(int fd, int how) {
  const auto identity = identify(fd);
  if (!identity) return REAL(shutdown)(fd, how);
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return fail(EINVAL);
  Request r = request(Op::kShutdown, identity->id);
  r.value = static_cast<uint64_t>(how);
  const Reply reply = call(r);
  if (reply.result < 0) return fail(-reply.result);
  // Writing's end goes through the socketpair (the broker reads the end of
  // the program's bytes); receiving's end is local, and the peer was told.
  return REAL(shutdown)(fd, how);
}

int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
  if (level != SOL_SOCKET && level != vmci::vsock_run::kVsockLevel) {
    return REAL(getsockopt)(fd, level, name, value, len);
  }
  const auto identity = identify(fd);
  if (!identity) return REAL(getsockopt)(fd, level, name, value, len);
  if (len == nullptr || value == nullptr) return fail(EFAULT);
  if (level == SOL_SOCKET) {
    int answer;
    switch (name) {
      case SO_DOMAIN:
        answer = AF_VSOCK;
        break;
      case SO_PROTOCOL:
        answer = 0;
        break;
      case SO_TYPE:
        answer = identity->kind == Kind::kStream ? SOCK_STREAM : SOCK_DGRAM;
        break;
      case SO_ERROR:
      case SO_ACCEPTCONN: {
        Request r = request(Op::kGetOption, identity->id);
        r.level = level;
        r.name = name;
        const Reply reply = call(r);
        if (reply.result < 0) return fail(-reply.result);
        answer = static_cast<int>(reply.value);
        break;
      }
      default:
        return REAL(getsockopt)(fd, level, name, value, len);
    }
    if (*len < sizeof(int)) return fail(EINVAL);
    ::memcpy(value, &answer, sizeof answer);
    *len = sizeof answer;
    return 0;
  }
  Request r = request(Op::kGetOption, identity->id);
  r.level = level;
  r.name = name;
  const Reply reply = call(r);
  if (reply.result < 0) return fail(-reply.result);
  if (name == vmci::vsock_run::kConnectTimeoutOld || name == vmci::vsock_run::kConnectTimeoutNew) {
    timeval tv{static_cast<time_t>(reply.value / 1000000),
               static_cast<suseconds_t>(reply.value % 1000000)};
    if (*len < sizeof tv) return fail(EINVAL);
    ::memcpy(value, &tv, sizeof tv);
    *len = sizeof tv;
    return 0;
  }
  if (*len < sizeof(uint64_t)) return fail(EINVAL);
  ::memcpy(value, &reply.value, sizeof reply.value);
  *len = sizeof(uint64_t);
  return 0;
}

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
  if (level != vmci::vsock_run::kVsockLevel) return REAL(setsockopt)(fd, level, name, value, len);
  const auto identity = identify(fd);
  if (!identity) return REAL(setsockopt)(fd, level, name, value, len);
  if (value == nullptr) return fail(EFAULT);
  Request r = request(Op::kSetOption, identity->id);
  r.level = level;
  r.name = name;
  if (name == vmci::vsock_run::kConnectTimeoutOld || name == vmci::vsock_run::kConnectTimeoutNew) {
    timeval tv;
    if (len < sizeof tv) return fail(EINVAL);
    ::memcpy(&tv, value, sizeof tv);
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return fail(EDOM);
    r.value = static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
  } else {
    if (len < sizeof(uint64_t)) return fail(EINVAL);
    ::memcpy(&r.value, value, sizeof r.value);
  }
  return result_of(call(r));
}

int ioctl(int fd, unsigned long request_code, ...) {
  va_list args;
  va_start(args, request_code);
  void* arg = va_arg(args, void*);
  va_end(args);
  if (request_code == IOCTL_VM_SOCKETS_GET_LOCAL_CID && (is_vsock_device(fd) || identify(fd))) {
    const Reply reply = call(request(Op::kLocalCid));
    if (reply.result < 0) return fail(-reply.result);
    if (arg == nullptr) return fail(EFAULT);
    ::memcpy(arg, &reply.cid, sizeof reply.cid);
    return 0;
  }
  return REAL(ioctl)(fd, request_code, arg);
}

// /dev/vsock: a descriptor whose GET_LOCAL_CID the library answers, also
// where the kernel has no such device.
static int open_vsock_device(int flags) {
  return ::memfd_create("vmci-vsock-dev", (flags & O_CLOEXEC) != 0 ? MFD_CLOEXEC : 0);
}

// Declares `mode`: the mode an open-family call was given, which it is
// only with O_CREAT or O_TMPFILE.
#define TAKE_MODE(flags, mode)                      \
  mode_t mode = 0;                                  \
  if (((flags) & (O_CREAT | O_TMPFILE)) != 0) {     \
    va_list args;                                   \
    va_start(args, flags);                          \
    mode = va_arg(args, mode_t);                    \
    va_end(args);                                   \
  }

static bool is_vsock_device_path(const char* path) {
  return ::strcmp(path, "/dev/vsock") == 0 && ::getenv(vmci::vsock_run::kBrokerEnv) != nullptr;
}

int open(const char* path, int flags, ...) {
  if (is_vsock_device_path(path)) return open_vsock_device(flags);
  TAKE_MODE(flags, mode)
  return REAL(open)(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  if (is_vsock_device_path(path)) return open_vsock_device(flags);
  TAKE_MODE(flags, mode)
  return REAL(open64)(path, flags, mode);
}

int openat(int dir, const char* path, int flags, ...) {
  if (is_vsock_device_path(path)) return open_vsock_device(flags);
  TAKE_MODE(flags, mode)
  return REAL(openat)(dir, path, flags, mode);
}

int close(int fd) {
  forget(fd);
  return REAL(close)(fd);
}

int dup2(int old_fd, int new_fd) {
  forget(new_fd);
  return REAL(dup2)(old_fd, new_fd);
}

int dup3(int old_fd, int new_fd, int flags) {
  forget(new_fd);
  return REAL(dup3)(old_fd, new_fd, flags);
}

int close_range(unsigned first, unsigned last, int flags) {
  for (unsigned fd = first; fd <= last && fd < kCachedFds; ++fd) forget(static_cast<int>(fd));
  return REAL(close_range)(first, last, flags);
}

ssize_t sendto(int fd, const void* buf, size_t size, int flags, const sockaddr* to,
               socklen_t to_len) {
  const Kind kind = kind_of(fd);
  if (kind == Kind::kDatagram) {
    const auto identity = identify(fd);
    if (!identity) return fail(EBADF);
    const iovec iov{const_cast<void*>(buf), size};
    return send_datagram(identity->id, &iov, 1, to, to_len);
  }
  if (kind == Kind::kStream && to != nullptr) {
    const auto identity = identify(fd);
    const Reply peer = call(request(Op::kPeerName, identity ? identity->id : 0));
    return fail(peer.result == 0 ? EISCONN : EOPNOTSUPP);
  }
  return REAL(sendto)(fd, buf, size, flags, to, to_len);
}

ssize_t send(int fd, const void* buf, size_t size, int flags) {
  if (kind_of(fd) == Kind::kDatagram) return sendto(fd, buf, size, flags, nullptr, 0);
  return REAL(send)(fd, buf, size, flags);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  const Kind kind = kind_of(fd);
  if (kind == Kind::kDatagram) {
    const auto identity = identify(fd);
    if (!identity) return fail(EBADF);
    return send_datagram(identity->id, msg->msg_iov, msg->msg_iovlen,
                         static_cast<const sockaddr*>(msg->msg_name), msg->msg_namelen);
  }
  if (kind == Kind::kStream && msg != nullptr && msg->msg_name != nullptr) {
    return fail(EISCONN);
  }
  return REAL(sendmsg)(fd, msg, flags);
}

ssize_t write(int fd, const void* buf, size_t size) {
  if (kind_of(fd) == Kind::kDatagram) return sendto(fd, buf, size, 0, nullptr, 0);
  return REAL(write)(fd, buf, size);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  const Kind kind = kind_of(fd);
  if (kind != Kind::kOther) {
    if (const int refused = refused_receive_flags(flags)) return fail(refused);
  }
  if (kind == Kind::kDatagram) return receive_datagram(fd, msg, flags);
  const ssize_t n = REAL(recvmsg)(fd, msg, flags);
  // A stream's peer is not the broker's Unix socket.
  if (n >= 0 && kind == Kind::kStream && msg != nullptr) msg->msg_namelen = 0;
  return n;
}

ssize_t recvfrom(int fd, void* buf, size_t size, int flags, sockaddr* from, socklen_t* from_len) {
  const Kind kind = kind_of(fd);
  if (kind != Kind::kOther) {
    if (const int refused = refused_receive_flags(flags)) return fail(refused);
  }
  if (kind == Kind::kDatagram) {
    iovec iov{buf, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_name = from;
    msg.msg_namelen = from_len != nullptr ? *from_len : 0;
    const ssize_t n = receive_datagram(fd, &msg, flags);
    if (n >= 0 && from_len != nullptr) *from_len = msg.msg_namelen;
    return n;
  }
  if (kind == Kind::kStream) {
    const ssize_t n = REAL(recvfrom)(fd, buf, size, flags, nullptr, nullptr);
    if (n >= 0 && from_len != nullptr) *from_len = 0;
    return n;
  }
  return REAL(recvfrom)(fd, buf, size, flags, from, from_len);
}

ssize_t recv(int fd, void* buf, size_t size, int flags) {
  const Kind kind = kind_of(fd);
  if (kind == Kind::kDatagram) return recvfrom(fd, buf, size, flags, nullptr, nullptr);
  if (kind == Kind::kStream) {
    if (const int refused = refused_receive_flags(flags)) return fail(refused);
  }
  return REAL(recv)(fd, buf, size, flags);
}

ssize_t read(int fd, void* buf, size_t size) {
  if (kind_of(fd) == Kind::kDatagram) return recvfrom(fd, buf, size, 0, nullptr, nullptr);
  return REAL(read)(fd, buf, size);
}

}  // extern "C"
