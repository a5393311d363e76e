// The C API (vmci/vmci_vsock.h): thin handles over the C++ classes.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "vmci/vmci_vsock.h"
#include "vmci/vsock/datagram_socket.h"
#include "vmci/vsock/transport.h"

struct vmci_vsock {
  std::shared_ptr<vmci::Endpoint> endpoint;  // outlives the transport
  std::shared_ptr<vmci::vsock::Transport> transport;
};
struct vmci_vsock_listener {
  std::unique_ptr<vmci::vsock::Listener> listener;
};
struct vmci_vsock_stream {
  std::unique_ptr<vmci::vsock::Stream> stream;
};
struct vmci_vsock_dgram {
  std::shared_ptr<vmci::Endpoint> endpoint;
  std::unique_ptr<vmci::vsock::DatagramSocket> socket;
};

namespace {

using vmci::vsock::Address;
using vmci::vsock::Timeout;

vmci::vsock::Timeout timeout_of(int ms) {
  if (ms < 0) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

// The address, or false (EINVAL) for one that is not AF_VSOCK.
bool address_of(const struct sockaddr_vm* in, Address* out) {
  if (in == nullptr || in->svm_family != AF_VSOCK) {
    errno = EINVAL;
    return false;
  }
  *out = Address{in->svm_cid, in->svm_port};
  return true;
}

void fill(const Address& a, struct sockaddr_vm* out) {
  if (out == nullptr) return;
  std::memset(out, 0, sizeof *out);
  out->svm_family = AF_VSOCK;
  out->svm_cid = a.cid;
  out->svm_port = a.port;
}

// Sets errno from `ec`; returns -1 if there was an error.
int fail(const std::error_code& ec) {
  if (!ec) return 0;
  errno = ec.value();
  return -1;
}

}  // namespace

extern "C" {

struct vmci_vsock* vmci_vsock_open(const struct vmci_endpoint* endpoint) {
  if (endpoint == nullptr || !endpoint->endpoint) {
    errno = EINVAL;
    return nullptr;
  }
  auto vsock = std::make_unique<vmci_vsock>();
  vsock->endpoint = endpoint->endpoint;
  std::error_code ec;
  vsock->transport = vmci::vsock::Transport::open(*vsock->endpoint, {}, ec);
  if (!vsock->transport) {
    fail(ec);
    return nullptr;
  }
  return vsock.release();
}

void vmci_vsock_close(struct vmci_vsock* vsock) { delete vsock; }

unsigned int vmci_vsock_local_cid(struct vmci_vsock* vsock) {
  return vsock == nullptr ? VMADDR_CID_ANY : vsock->transport->local_cid();
}

struct vmci_vsock_listener* vmci_vsock_listen(struct vmci_vsock* vsock, unsigned int port,
                                              int backlog) {
  if (vsock == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  std::error_code ec;
  auto listener = vsock->transport->listen(port, backlog, ec);
  if (!listener) {
    fail(ec);
    return nullptr;
  }
  return new vmci_vsock_listener{std::move(listener)};
}

struct vmci_vsock_stream* vmci_vsock_accept(struct vmci_vsock_listener* listener,
                                            struct sockaddr_vm* peer, int timeout_ms) {
  if (listener == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  std::error_code ec;
  auto stream = listener->listener->accept(timeout_of(timeout_ms), ec);
  if (!stream) {
    fail(ec);
    return nullptr;
  }
  fill(stream->remote_address(), peer);
  return new vmci_vsock_stream{std::move(stream)};
}

void vmci_vsock_listener_close(struct vmci_vsock_listener* listener) { delete listener; }

struct vmci_vsock_stream* vmci_vsock_connect(struct vmci_vsock* vsock,
                                             const struct sockaddr_vm* remote, int timeout_ms) {
  Address to;
  if (vsock == nullptr || !address_of(remote, &to)) {
    errno = EINVAL;
    return nullptr;
  }
  std::error_code ec;
  auto stream = vsock->transport->connect(to, ec, timeout_of(timeout_ms));
  if (!stream) {
    fail(ec);
    return nullptr;
  }
  return new vmci_vsock_stream{std::move(stream)};
}

ssize_t vmci_vsock_send(struct vmci_vsock_stream* stream, const void* buf, size_t len,
                        int timeout_ms) {
  if (stream == nullptr) {
    errno = EINVAL;
    return -1;
  }
  std::error_code ec;
  const size_t n = stream->stream->write_some(buf, len, timeout_of(timeout_ms), ec);
  return fail(ec) < 0 ? -1 : static_cast<ssize_t>(n);
}

ssize_t vmci_vsock_recv(struct vmci_vsock_stream* stream, void* buf, size_t len, int timeout_ms) {
  if (stream == nullptr) {
    errno = EINVAL;
    return -1;
  }
  std::error_code ec;
  const size_t n = stream->stream->read_some(buf, len, timeout_of(timeout_ms), ec);
  return fail(ec) < 0 ? -1 : static_cast<ssize_t>(n);
}

int vmci_vsock_shutdown(struct vmci_vsock_stream* stream, int how) {
  if (stream == nullptr || how < SHUT_RD || how > SHUT_RDWR) {
    errno = EINVAL;
    return -1;
  }
  return fail(stream->stream->shutdown(static_cast<uint32_t>(how) + 1));
}

int vmci_vsock_getsockname(struct vmci_vsock_stream* stream, struct sockaddr_vm* out) {
  if (stream == nullptr || out == nullptr) {
    errno = EINVAL;
    return -1;
  }
  fill(stream->stream->local_address(), out);
  return 0;
}

int vmci_vsock_getpeername(struct vmci_vsock_stream* stream, struct sockaddr_vm* out) {
  if (stream == nullptr || out == nullptr) {
    errno = EINVAL;
    return -1;
  }
  fill(stream->stream->remote_address(), out);
  return 0;
}

void vmci_vsock_stream_close(struct vmci_vsock_stream* stream) { delete stream; }

struct vmci_vsock_dgram* vmci_vsock_dgram_bind(struct vmci_vsock* vsock,
                                               const struct sockaddr_vm* local) {
  Address at;
  if (vsock == nullptr || !address_of(local, &at)) {
    errno = EINVAL;
    return nullptr;
  }
  std::error_code ec;
  auto socket = vmci::vsock::DatagramSocket::bind(*vsock->endpoint, at, ec);
  if (!socket) {
    fail(ec);
    return nullptr;
  }
  return new vmci_vsock_dgram{vsock->endpoint, std::move(socket)};
}

ssize_t vmci_vsock_sendto(struct vmci_vsock_dgram* socket, const void* buf, size_t len,
                          const struct sockaddr_vm* to) {
  Address dst;
  if (socket == nullptr || !address_of(to, &dst)) {
    errno = EINVAL;
    return -1;
  }
  std::error_code ec;
  const size_t n = socket->socket->send_to(buf, len, dst, ec);
  return fail(ec) < 0 ? -1 : static_cast<ssize_t>(n);
}

ssize_t vmci_vsock_recvfrom(struct vmci_vsock_dgram* socket, void* buf, size_t len,
                            struct sockaddr_vm* from, int timeout_ms) {
  if (socket == nullptr) {
    errno = EINVAL;
    return -1;
  }
  std::error_code ec;
  Address src;
  const size_t n = socket->socket->receive_from(buf, len, &src, timeout_of(timeout_ms), ec);
  if (fail(ec) < 0) return -1;
  fill(src, from);
  return static_cast<ssize_t>(n);
}

void vmci_vsock_dgram_close(struct vmci_vsock_dgram* socket) { delete socket; }

}  // extern "C"
