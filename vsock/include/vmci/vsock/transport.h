// transport.h: vSockets stream sockets over one VMCI endpoint, speaking
// Linux's vmw_vsock_vmci_transport on the wire (vmci/vsock/packet.h).
//
// A Transport is one context's vSockets: it owns the endpoint's control
// handle (any context, resource 1), the table of listening and connected
// ports, and the subscription to QP_PEER_DETACH that tells a connection its
// peer is gone (there is no FIN). The same code serves a guest (a guest
// Driver), a host connection and an embedded host endpoint. The client of a
// connection creates its queue pair and the server attaches, whichever is
// the guest; data goes through the pair, and the WROTE and READ control
// packets wake a peer that sleeps on an empty or full queue (the queue-state
// notify protocol). Nothing polls: a blocked call sleeps until a packet or
// an event wakes it, or its timeout passes.
//
// Errors are errno values (std::generic_category), as Linux's vSockets
// reports them: ECONNRESET for a port nobody listens on, EPIPE after a
// shutdown, ETIMEDOUT for a connect that got no answer, and so on.
//
//   std::error_code ec;
//   auto vsock = vmci::vsock::Transport::open(endpoint, {}, ec);
//   auto listener = vsock->listen(1234, 16, ec);            // server
//   std::unique_ptr<vmci::vsock::Stream> s = listener->accept(std::nullopt, ec);
//   auto c = vsock->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);  // client
//   c->write_all(data, n, ec);
//   size_t got = s->read_some(buf, sizeof buf, std::nullopt, ec);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "vmci/endpoint.h"
#include "vmci/vsock/capture.h"
#include "vmci/vsock/packet.h"

namespace vmci::vsock {

inline constexpr uint32_t kPortAny = 0xFFFFFFFF;  // VMADDR_PORT_ANY
inline constexpr vmci_id kCidAny = 0xFFFFFFFF;    // VMADDR_CID_ANY
inline constexpr uint32_t kLastReservedPort = 1023;

struct Address {
  vmci_id cid = kCidAny;
  uint32_t port = kPortAny;
  friend bool operator==(const Address&, const Address&) = default;
};
std::string to_string(const Address& address);

using Timeout = std::optional<std::chrono::milliseconds>;  // nullopt: no limit

struct TransportOptions {
  // Queue-pair sizes (SO_VM_SOCKETS_BUFFER_SIZE and its bounds); a
  // connection's pair has buffer_size in each direction.
  uint64_t buffer_size = 262144;
  uint64_t buffer_min_size = 128;
  uint64_t buffer_max_size = 262144;
  // How long connect() waits for the handshake (SO_VM_SOCKETS_CONNECT_TIMEOUT).
  std::chrono::milliseconds connect_timeout{2000};
  // How long a server's half-open connection may wait for the client's
  // OFFER. Past it, the child no longer counts against the backlog: the next
  // request to its listener drops it.
  std::chrono::milliseconds pending_timeout{1000};
  // Trusted (Linux: a socket made with CAP_NET_ADMIN): the control handle
  // and queue pairs are made with VMCI_PRIVILEGE_FLAG_TRUSTED where VMCI
  // allows it (on the host), so RESTRICTED guests may connect. Untrusted,
  // VMCI refuses a restricted guest's packets (its connect fails, EPERM).
  bool trusted = false;
  // Where the transport says what it refused (malformed or forged packets,
  // packets out of turn); rate-limited per peer and reason. Empty: stderr.
  std::function<void(const std::string&)> log;
  // Where every control packet sent and received, every stream's bytes
  // written and read, and every close is recorded (vmci/vsock/capture.h).
  // Null: nothing is.
  std::shared_ptr<Capture> capture;
};

class Transport;
struct Connection;
class Outbox;

// A connected stream socket. Thread-safe: one reader and one writer may
// block at once. Destroying it closes it.
class Stream {
 public:
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Address local_address() const;
  Address remote_address() const;

  // Reads what is there, at most `size` bytes, waiting until at least one
  // byte is or the peer will send no more (returns 0: end of stream).
  // EAGAIN when the timeout passes (a zero timeout: do not wait), ENOTCONN
  // when it never connected, ECONNRESET if the connection was reset while
  // connecting. `peek`: leave the bytes in the queue.
  size_t read_some(void* buf, size_t size, Timeout timeout, std::error_code& ec,
                   bool peek = false);
  // Writes what fits, at least one byte, waiting for room. EPIPE once this
  // side shut down sending or the peer shut down receiving or left; EAGAIN
  // when the timeout passes.
  size_t write_some(const void* buf, size_t size, Timeout timeout, std::error_code& ec);
  // Writes everything (the timeout applies to each wait), or fails as
  // write_some; returns what was written.
  size_t write_all(const void* buf, size_t size, std::error_code& ec, Timeout timeout = {});
  // Sends SHUTDOWN with kReceiveShutdown and/or kSendShutdown.
  std::error_code shutdown(uint32_t mode);
  // Bytes ready to read now, and room to write now (0 once not connected).
  size_t readable() const;
  size_t writable() const;
  // The peer's shutdown bits (kShutdownMask once it left).
  uint32_t peer_shutdown() const;
  // Waits until the peer's shutdown bits include all of `bits`, or this
  // side closes; returns the peer's bits then (fewer: the timeout passed,
  // or the connection was closed here).
  uint32_t wait_for_peer_shutdown(uint32_t bits, Timeout timeout);

  // For event-driven callers (vmci/vsock/asio.h). If a read (kRead) or a
  // write (kWrite) would not have to wait now, returns false and drops
  // `ready`. Otherwise keeps it and returns true: it is called once, the
  // next time anything happens to the connection (a WROTE or READ, a
  // shutdown, a reset, the peer leaving, a close), under the transport's
  // lock: it must not block or call the transport; post the work instead.
  enum class Wait { kRead, kWrite };
  bool when_ready(Wait what, std::function<void()> ready);
  // Closes the connection: its queue pair is detached, so the peer sees it
  // go (QP_PEER_DETACH); later packets to its port are answered with RST.
  void close();

 private:
  friend class Transport;
  friend class Listener;
  explicit Stream(std::shared_ptr<Connection> connection);
  std::shared_ptr<Connection> connection_;
};

// A listening stream port.
class Listener {
 public:
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Address local_address() const;
  // The next established connection; EAGAIN when the timeout passes.
  std::unique_ptr<Stream> accept(Timeout timeout, std::error_code& ec);
  // Connections established and waiting for accept().
  size_t ready() const;
  // Stops listening: connections not accepted yet are closed.
  void close();
  // As Stream::when_ready, for accept().
  bool when_ready(std::function<void()> ready);

 private:
  friend class Transport;
  friend class Outbox;
  struct State;
  explicit Listener(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

class Transport : public std::enable_shared_from_this<Transport> {
 public:
  // Opens vSockets on `endpoint`, which must outlive the Transport: creates
  // the control handle (any context, resource 1) and subscribes to
  // QP_PEER_DETACH. EADDRINUSE if the endpoint's context already has one
  // (on a host, one host connection is vSockets).
  static std::shared_ptr<Transport> open(Endpoint& endpoint, TransportOptions options,
                                         std::error_code& ec);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  vmci_id local_cid() const;

  // Listens on `port` (kPortAny: an ephemeral one) with room for `backlog`
  // connections not accepted yet (at least 1). EADDRINUSE if the port is
  // taken.
  std::unique_ptr<Listener> listen(uint32_t port, int backlog, std::error_code& ec);
  // Connects to `remote` from `local_port` (kPortAny: an ephemeral one):
  // REQUEST2, NEGOTIATE2, OFFER of the queue pair this side creates,
  // ATTACH. ECONNRESET if nobody listens there, ETIMEDOUT after the connect
  // timeout (or `timeout`), EPROTO for a peer that breaks the handshake,
  // ENETUNREACH for context 1, VMCI's errors mapped as errors.h says.
  std::unique_ptr<Stream> connect(Address remote, std::error_code& ec, Timeout timeout = {},
                                  uint32_t local_port = kPortAny);

  // The control handle's callback: one datagram as it arrived. Public so
  // that tests can feed packets directly.
  int receive(const vmci_datagram* datagram);

  // What the transport holds, and control packets it sent, by type (tests,
  // introspection).
  size_t connection_count() const;
  // The queue pairs of its connections that have one (connecting, waiting
  // for accept, or connected), by handle.
  std::vector<vmci_handle> queue_pairs() const;
  uint64_t packets_sent(PacketType type) const;
  // Sends one encoded control packet, counting it: the endpoint's result.
  int send_packet(const std::vector<uint8_t>& packet);

 private:
  friend class Stream;
  friend class Listener;
  friend struct Connection;
  struct Tables;
  Transport(Endpoint& endpoint, TransportOptions options);
  // Under the transport's lock: a packet for one of its connections or
  // listeners. What to send goes into `out`; a queue pair to detach once
  // the lock is released is returned.
  std::unique_ptr<QueuePair> receive_on_connection(Connection& c, const Packet& p,
                                                   Outbox& out);
  void receive_on_listener(Listener::State& listener, const Packet& p, Outbox& out);
  // Under the lock: takes `c` out of the tables (closed from now on) and
  // returns its queue pair, to detach once the lock is released.
  std::unique_ptr<QueuePair> drop_locked(Connection& c);
  // Under the lock: `port` if no listener or client has it (else
  // EADDRINUSE), or for kPortAny the next free port above the reserved ones
  // (EADDRNOTAVAIL if the next 65536 are all taken). Server children share their
  // listener's port.
  uint32_t take_port_locked(uint32_t port, std::error_code& ec);
  // A connection's queue pair (both queues `size`), trusted first if the
  // transport is.
  int alloc_queue_pair(std::unique_ptr<QueuePair>* qp, vmci_handle* handle, uint64_t size,
                       vmci_id peer, uint32_t flags);
  // Sends a WROTE or READ for `c`, again on failure (a full pending queue),
  // and logs it if every try failed. Not under the lock.
  void notify_peer(const Connection& c, PacketType type);
  // Under the lock: drops the listener's children that have waited for
  // their OFFER too long.
  void expire_pending_locked(std::vector<std::unique_ptr<QueuePair>>* to_detach);

  Endpoint& endpoint_;
  const TransportOptions options_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace vmci::vsock
