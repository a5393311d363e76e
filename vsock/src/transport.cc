#include "vmci/vsock/transport.h"

#include <cerrno>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "vmci/proto/handles.h"
#include "vmci/proto/log_rate_limit.h"
#include "vmci/vmci_defs.h"
#include "vmci/vsock/errors.h"

namespace vmci::vsock {

namespace {

using Clock = std::chrono::steady_clock;

// What the log's rate limit counts: why a packet was refused, or a
// notification that could not be sent.
enum class Refusal : uint32_t { kMalformed, kForged, kOutOfTurn, kUnknownType, kNotifyLost };

// How often a WROTE or READ is sent again when the send fails (Linux's
// VMCI_TRANSPORT_MAX_DGRAM_RESENDS).
constexpr int kNotifyResends = 10;
// The page by which the read-notify window moves.
constexpr uint64_t kPage = 4096;

std::optional<Clock::time_point> deadline_of(Timeout timeout) {
  if (!timeout) return std::nullopt;
  return Clock::now() + *timeout;
}

}  // namespace

std::string to_string(const Address& address) {
  return std::to_string(address.cid) + ":" + std::to_string(address.port);
}

enum class ConnectionState {
  kConnecting,   // a client between REQUEST2 and ATTACH
  kPending,      // a server's child between NEGOTIATE2 and OFFER
  kEstablished,  // the queue pair is shared
  kClosed,       // closed here, or never connected
};

// One stream connection; guarded by the transport's mutex. Invariant: it
// is in the connection table exactly while its state is not kClosed.
struct Connection {
  std::weak_ptr<Transport> transport;
  ConnectionState state = ConnectionState::kConnecting;
  Address local, remote;
  std::unique_ptr<QueuePair> qp;
  vmci_handle qp_handle = VMCI_INVALID_HANDLE;
  uint64_t qp_size = 0;
  uint32_t shutdown = 0;       // this side's shutdown bits
  uint32_t peer_shutdown = 0;  // the peer's (kShutdownMask once it left)
  int error = 0;               // why the connection failed (sk_err)
  bool client = false;         // connected from here: its local port is its own
  bool negotiated = false;     // a client got NEGOTIATE2
  Clock::time_point pending_deadline;  // a server's child: OFFER by then
  // The queue-state protocol's reader side (§3.3): the writer may wait for
  // room since a read found the queue full; READ is sent once fewer than
  // `window` bytes are left unread. The window shrinks by a page when a
  // waiting writer is first seen and grows by a page each time the reader
  // is about to wait.
  uint64_t window = 0;
  uint64_t min_window = 0;
  bool peer_waiting_write = false;
  bool peer_waiting_write_detected = false;

  // Under the lock, once the pair is there.
  void start_window() {
    window = qp_size;
    min_window = std::min<uint64_t>(kPage, qp_size);
  }
  // Under the lock, after a read that took `got` bytes (0: about to wait):
  // whether to send READ now.
  bool read_notify_due(int64_t got) {
    const int64_t free = qp->consume_free_space();
    if (got > 0 && free == got) peer_waiting_write = true;  // it was full
    if (!peer_waiting_write || (peer_shutdown & kReceiveShutdown) != 0) return false;
    if (!peer_waiting_write_detected) {
      peer_waiting_write_detected = true;
      window = std::max(window > kPage ? window - kPage : 0, min_window);
    }
    if (free <= static_cast<int64_t>(qp_size - window)) return false;
    peer_waiting_write = peer_waiting_write_detected = false;
    return true;
  }
  std::condition_variable changed_cv;  // any of the above, WROTE, READ
  std::vector<std::function<void()>> waiters;  // Stream::when_ready

  // Wakes whoever waits for a change (under the transport's lock).
  void changed() {
    changed_cv.notify_all();
    auto ready = std::move(waiters);
    waiters.clear();
    for (auto& r : ready) r();
  }
};

namespace {

// Sleeps on `c` until it changes or `deadline` passes (none: until it
// changes); false once the deadline has passed.
bool wait_for_change(Connection& c, std::unique_lock<std::mutex>& lock,
                     std::optional<Clock::time_point> deadline) {
  if (!deadline) {
    c.changed_cv.wait(lock);
    return true;
  }
  if (Clock::now() >= *deadline) return false;
  c.changed_cv.wait_until(lock, *deadline);
  return true;  // the caller looks again; the next wait sees the deadline
}

}  // namespace

struct Listener::State {
  std::weak_ptr<Transport> transport;
  uint32_t port = 0;
  size_t backlog = 1;
  size_t pending = 0;  // children waiting for their OFFER
  bool closed = false;
  std::deque<std::shared_ptr<Connection>> accept_queue;
  std::condition_variable changed_cv;
  std::vector<std::function<void()>> waiters;  // Listener::when_ready

  void changed() {
    changed_cv.notify_all();
    auto ready = std::move(waiters);
    waiters.clear();
    for (auto& r : ready) r();
  }
};

namespace {

using Key = std::tuple<vmci_id, uint32_t, uint32_t>;  // remote cid, remote port, local port

Key key_of(const Connection& c) { return {c.remote.cid, c.remote.port, c.local.port}; }

}  // namespace

struct Transport::Tables {
  explicit Tables(std::function<void(const std::string&)> write)
      : log(std::move(write)),
        limit([this](const proto::LogSuppressed& s) {
          log("vsock: " + std::to_string(s.lines) + " more refusals like the last from context " +
              std::to_string(s.peer) + " not logged");
        }) {}

  void refuse(vmci_id peer, Refusal reason, const std::string& why) {
    limit.write(peer, static_cast<uint32_t>(reason), [&] { log("vsock: " + why); });
  }

  std::function<void(const std::string&)> log;
  proto::LogRateLimit limit;
  mutable std::mutex mutex;
  vmci_handle control = VMCI_INVALID_HANDLE;
  vmci_id detach_subscription = VMCI_INVALID_ID;
  std::map<uint32_t, std::shared_ptr<Listener::State>> listeners;  // by port
  std::map<Key, std::shared_ptr<Connection>> connections;
  std::map<uint64_t, std::weak_ptr<Connection>> by_queue_pair;  // handle key
  std::map<Key, std::weak_ptr<Listener::State>> pending_of;     // a child's listener
  std::set<uint32_t> client_ports;
  uint32_t next_port = 0;
  std::array<std::atomic<uint64_t>, static_cast<size_t>(PacketType::kMax)> sent{};
};

// Packets to send once the transport's lock is released.
class Outbox {
 public:
  void add(PacketType type, vmci_id dst_cid, uint32_t src_port, uint32_t dst_port,
           uint64_t u = 0, uint16_t proto = 0) {
    packets_.push_back(encode(type, dst_cid, src_port, dst_port, u, proto));
  }
  void reply(const Packet& to, PacketType type, uint64_t u = 0, uint16_t proto = 0) {
    add(type, to.src_cid, to.dst_port, to.src_port, u, proto);
  }
  // A server's connection whose ATTACH is in this outbox: it may be
  // accepted (and so written to) only once the ATTACH has gone, or its
  // client would see a WROTE before it (Transport::receive).
  void accept_after_sending(std::shared_ptr<Listener::State> listener,
                            std::shared_ptr<Connection> connection) {
    to_accept_.emplace_back(std::move(listener), std::move(connection));
  }
  std::vector<std::pair<std::shared_ptr<Listener::State>, std::shared_ptr<Connection>>>
  take_to_accept() {
    return std::move(to_accept_);
  }

  // Sends them all; the first failure's VMCI status, or VMCI_SUCCESS.
  int send(Transport& transport) {
    int first = VMCI_SUCCESS;
    for (const auto& bytes : packets_) {
      const int result = transport.send_packet(bytes);
      if (result < VMCI_SUCCESS && first == VMCI_SUCCESS) first = result;
    }
    packets_.clear();
    return first;
  }

 private:
  std::vector<std::vector<uint8_t>> packets_;
  std::vector<std::pair<std::shared_ptr<Listener::State>, std::shared_ptr<Connection>>>
      to_accept_;
};

namespace {

}  // namespace

// --- Transport -------------------------------------------------------------

int Transport::alloc_queue_pair(std::unique_ptr<QueuePair>* qp, vmci_handle* handle,
                                uint64_t size, vmci_id peer, uint32_t flags) {
  if (options_.trusted) {  // only a host may; a guest is refused and goes on
    const int status =
        endpoint_.qpair_alloc(qp, handle, size, size, peer, flags, VMCI_PRIVILEGE_FLAG_TRUSTED);
    if (status != VMCI_ERROR_NO_ACCESS) return status;
  }
  return endpoint_.qpair_alloc(qp, handle, size, size, peer, flags, 0);
}

Transport::Transport(Endpoint& endpoint, TransportOptions options)
    : endpoint_(endpoint), options_(std::move(options)) {
  auto write = options_.log;
  if (!write) write = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  tables_ = std::make_unique<Tables>(std::move(write));
  std::random_device rd;
  tables_->next_port = kLastReservedPort + 1 + rd() % 30000;
}

std::shared_ptr<Transport> Transport::open(Endpoint& endpoint, TransportOptions options,
                                           std::error_code& ec) {
  std::shared_ptr<Transport> t(new Transport(endpoint, std::move(options)));
  std::weak_ptr<Transport> weak = t;
  vmci_handle control;
  auto receive = [weak](vmci_datagram* dg) {
    auto self = weak.lock();
    return self ? self->receive(dg) : VMCI_SUCCESS;
  };
  // Trusted where VMCI allows it (the host), as Linux's transport tries.
  int status = VMCI_ERROR_NO_ACCESS;
  if (t->options_.trusted) {
    status = endpoint.datagram_create_handle(kPacketResource, VMCI_FLAG_ANYCID_DG_HND,
                                             VMCI_PRIVILEGE_FLAG_TRUSTED, receive, &control);
  }
  if (status == VMCI_ERROR_NO_ACCESS) {
    status = endpoint.datagram_create_handle(kPacketResource, VMCI_FLAG_ANYCID_DG_HND, 0,
                                             receive, &control);
  }
  if (status < VMCI_SUCCESS) {
    ec = make_error(errno_of_vmci(status));
    return nullptr;
  }
  t->tables_->control = control;
  vmci_id sub;
  status = endpoint.event_subscribe(
      VMCI_EVENT_QP_PEER_DETACH,
      [weak](vmci_id, vmci_event_data* ed) {
        auto self = weak.lock();
        if (!self) return;
        vmci_event_payload_qp qp;
        std::memcpy(&qp, reinterpret_cast<const uint8_t*>(ed) + sizeof *ed, sizeof qp);
        std::lock_guard lock(self->tables_->mutex);
        auto it = self->tables_->by_queue_pair.find(proto::handle_key(qp.handle));
        if (it == self->tables_->by_queue_pair.end()) return;
        if (auto c = it->second.lock()) {
          // There is no FIN: the peer's detach is the end of the connection.
          c->peer_shutdown = kShutdownMask;
          if (c->state == ConnectionState::kConnecting) c->error = ECONNRESET;
          c->changed();
        }
      },
      &sub);
  if (status < VMCI_SUCCESS) {
    endpoint.datagram_destroy_handle(control);
    ec = make_error(errno_of_vmci(status));
    return nullptr;
  }
  t->tables_->detach_subscription = sub;
  ec.clear();
  return t;
}

Transport::~Transport() {
  endpoint_.datagram_destroy_handle(tables_->control);
  endpoint_.event_unsubscribe(tables_->detach_subscription);
  std::vector<std::unique_ptr<QueuePair>> pairs;
  {
    std::lock_guard lock(tables_->mutex);
    for (auto& [key, c] : tables_->connections) {
      c->state = ConnectionState::kClosed;
      if (c->qp) pairs.push_back(std::move(c->qp));
      c->changed();
    }
    for (auto& [port, l] : tables_->listeners) {
      l->closed = true;
      l->changed();
    }
    tables_->connections.clear();
  }
  for (auto& qp : pairs) endpoint_.qpair_detach(&qp);
}

vmci_id Transport::local_cid() const { return endpoint_.get_context_id(); }

int Transport::send_packet(const std::vector<uint8_t>& packet) {
  WirePacket p;
  std::memcpy(&p, packet.data(), sizeof p);
  if (p.type < tables_->sent.size()) tables_->sent[p.type].fetch_add(1, std::memory_order_relaxed);
  if (options_.capture) options_.capture->control(local_cid(), p.dg.dst.context, packet);
  return endpoint_.datagram_send(reinterpret_cast<const vmci_datagram*>(packet.data()));
}

void Transport::notify_peer(const Connection& c, PacketType type) {
  const auto bytes = encode(type, c.remote.cid, c.local.port, c.remote.port);
  int status = VMCI_SUCCESS;
  for (int i = 0; i < kNotifyResends; ++i) {
    status = send_packet(bytes);
    if (status >= VMCI_SUCCESS) return;
  }
  std::lock_guard lock(tables_->mutex);
  tables_->refuse(c.remote.cid, Refusal::kNotifyLost,
                  std::string(packet_type_name(type)) + " from " + to_string(c.local) + " to " +
                      to_string(c.remote) + " not sent after " + std::to_string(kNotifyResends) +
                      " tries (VMCI status " + std::to_string(status) +
                      "); the peer learns of the change only with the next one");
}

uint64_t Transport::packets_sent(PacketType type) const {
  const auto i = static_cast<size_t>(type);
  return i < tables_->sent.size() ? tables_->sent[i].load(std::memory_order_relaxed) : 0;
}

size_t Transport::connection_count() const {
  std::lock_guard lock(tables_->mutex);
  return tables_->connections.size();
}

std::vector<vmci_handle> Transport::queue_pairs() const {
  std::lock_guard lock(tables_->mutex);
  std::vector<vmci_handle> handles;
  for (const auto& [key, connection] : tables_->connections) {
    if (connection->qp) handles.push_back(connection->qp_handle);
  }
  return handles;
}

uint32_t Transport::take_port_locked(uint32_t port, std::error_code& ec) {
  Tables& t = *tables_;
  auto taken = [&](uint32_t p) { return t.listeners.count(p) || t.client_ports.count(p); };
  ec.clear();
  if (port != kPortAny) {
    if (taken(port)) ec = make_error(EADDRINUSE);
    return port;
  }
  for (uint32_t tries = 0; tries < 65536; ++tries) {  // a bound, as Linux tries a few
    const uint32_t candidate = t.next_port++;
    if (t.next_port == kPortAny) t.next_port = kLastReservedPort + 1;
    if (!taken(candidate)) return candidate;
  }
  ec = make_error(EADDRNOTAVAIL);
  return kPortAny;
}

std::unique_ptr<Listener> Transport::listen(uint32_t port, int backlog, std::error_code& ec) {
  std::lock_guard lock(tables_->mutex);
  Tables& t = *tables_;
  port = take_port_locked(port, ec);
  if (ec) return nullptr;
  auto state = std::make_shared<Listener::State>();
  state->transport = weak_from_this();
  state->port = port;
  state->backlog = static_cast<size_t>(std::max(backlog, 1));
  t.listeners[port] = state;
  ec.clear();
  return std::unique_ptr<Listener>(new Listener(std::move(state)));
}

std::unique_ptr<Stream> Transport::connect(Address remote, std::error_code& ec, Timeout timeout,
                                           uint32_t local_port) {
  if (remote.cid == 1) {  // VMADDR_CID_LOCAL: no loopback transport here
    ec = make_error(ENETUNREACH);
    return nullptr;
  }
  if (remote.cid == kCidAny || remote.port == kPortAny) {
    ec = make_error(EINVAL);
    return nullptr;
  }
  auto c = std::make_shared<Connection>();
  c->transport = weak_from_this();
  c->remote = remote;
  const vmci_id own_cid = endpoint_.get_context_id();
  Tables& t = *tables_;
  {
    std::lock_guard lock(t.mutex);
    local_port = take_port_locked(local_port, ec);
    if (ec) return nullptr;
    c->local = Address{own_cid, local_port};
    c->state = ConnectionState::kConnecting;
    c->client = true;
    t.client_ports.insert(local_port);
    t.connections[key_of(*c)] = c;
  }
  const auto deadline = Clock::now() + timeout.value_or(options_.connect_timeout);
  auto fail = [&](std::unique_lock<std::mutex>& lock, int error, bool reset) {
    auto qp = drop_locked(*c);
    lock.unlock();
    if (reset) {
      Outbox out;
      out.add(PacketType::kRst, remote.cid, c->local.port, remote.port);
      out.send(*this);
    }
    if (qp) endpoint_.qpair_detach(&qp);
    ec = make_error(error);
    return nullptr;
  };

  Outbox out;
  out.add(PacketType::kRequest2, remote.cid, local_port, remote.port, options_.buffer_size,
          kProtoQueueState);
  const int sent = out.send(*this);
  std::unique_lock lock(t.mutex);
  if (sent < VMCI_SUCCESS) return fail(lock, errno_of_vmci(sent), false);
  // NEGOTIATE2 (or a refusal).
  if (!c->changed_cv.wait_until(lock, deadline, [&] { return c->negotiated || c->error != 0; })) {
    return fail(lock, ETIMEDOUT, true);
  }
  if (c->error != 0) return fail(lock, c->error, false);
  if (c->qp_size < options_.buffer_min_size || c->qp_size > options_.buffer_max_size) {
    return fail(lock, EINVAL, true);
  }
  const uint64_t size = c->qp_size;
  const uint32_t flags = remote.cid == c->local.cid ? VMCI_QPFLAG_LOCAL : 0;
  lock.unlock();
  std::unique_ptr<QueuePair> qp;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  const int alloc = alloc_queue_pair(&qp, &handle, size, remote.cid, flags);
  lock.lock();
  if (alloc < VMCI_SUCCESS) return fail(lock, errno_of_vmci(alloc), true);
  if (c->state == ConnectionState::kClosed || c->error != 0) {
    c->qp = std::move(qp);
    return fail(lock, c->error != 0 ? c->error : ECONNRESET, false);
  }
  c->qp = std::move(qp);
  c->qp_handle = handle;
  c->start_window();
  t.by_queue_pair[proto::handle_key(handle)] = c;
  lock.unlock();
  out.add(PacketType::kOffer, remote.cid, local_port, remote.port, handle_word(handle));
  const int offered = out.send(*this);
  lock.lock();
  if (offered < VMCI_SUCCESS) return fail(lock, errno_of_vmci(offered), true);
  // ATTACH (or a reset, or the peer's detach).
  if (!c->changed_cv.wait_until(lock, deadline, [&] {
        return c->state == ConnectionState::kEstablished || c->error != 0;
      })) {
    return fail(lock, ETIMEDOUT, true);
  }
  if (c->error != 0) return fail(lock, c->error, false);
  ec.clear();
  return std::unique_ptr<Stream>(new Stream(c));
}

int Transport::receive(const vmci_datagram* dg) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(dg);
  Tables& t = *tables_;
  Packet p;
  std::string why;
  const Decoded decoded = decode({bytes, VMCI_DG_SIZE(dg)}, &p, &why);
  if (decoded != Decoded::kPacket) {
    t.refuse(dg->src.context,
             decoded == Decoded::kMalformed ? Refusal::kMalformed : Refusal::kForged,
             why + " from " + proto::to_string(dg->src) + "; dropped");
    return VMCI_ERROR_NO_ACCESS;
  }
  if (options_.capture) options_.capture->control(p.src_cid, p.dst_cid, {bytes, VMCI_DG_SIZE(dg)});
  Outbox out;
  std::unique_ptr<QueuePair> to_detach;
  std::vector<std::unique_ptr<QueuePair>> to_detach_later;
  {
    std::lock_guard lock(t.mutex);
    if (p.raw_type >= static_cast<uint8_t>(PacketType::kMax)) {
      t.refuse(p.src_cid, Refusal::kUnknownType,
               "a control packet of unknown type " + std::to_string(p.raw_type) +
                   " from context " + std::to_string(p.src_cid) + "; answered INVALID");
      out.reply(p, PacketType::kInvalid);
    } else if (auto it = t.connections.find(Key{p.src_cid, p.src_port, p.dst_port});
               it != t.connections.end()) {
      std::shared_ptr<Connection> c = it->second;
      to_detach = receive_on_connection(*c, p, out);
    } else if (auto l = t.listeners.find(p.dst_port); l != t.listeners.end()) {
      receive_on_listener(*l->second, p, out);
    } else if (p.type != PacketType::kRst) {
      out.reply(p, PacketType::kRst);  // nobody listens, or the port is only bound
    }
  }
  out.send(*this);
  for (auto& [listener, c] : out.take_to_accept()) {
    std::lock_guard lock(t.mutex);
    --listener->pending;
    if (c->state != ConnectionState::kEstablished) continue;  // reset or closed meanwhile
    if (listener->closed) {
      if (auto qp = drop_locked(*c)) {
        out.add(PacketType::kRst, c->remote.cid, c->local.port, c->remote.port);
        to_detach_later.push_back(std::move(qp));
      }
      continue;
    }
    listener->accept_queue.push_back(c);
    listener->changed();
  }
  out.send(*this);
  if (to_detach) endpoint_.qpair_detach(&to_detach);
  for (auto& qp : to_detach_later) endpoint_.qpair_detach(&qp);
  return VMCI_SUCCESS;
}

std::unique_ptr<QueuePair> Transport::drop_locked(Connection& c) {
  Tables& t = *tables_;
  const Key key = key_of(c);
  if (c.state == ConnectionState::kPending) {
    if (auto it = t.pending_of.find(key); it != t.pending_of.end()) {
      if (auto l = it->second.lock()) --l->pending;
      t.pending_of.erase(it);
    }
  }
  c.state = ConnectionState::kClosed;
  t.connections.erase(key);
  if (c.client) t.client_ports.erase(c.local.port);
  if (!proto::is_invalid(c.qp_handle)) t.by_queue_pair.erase(proto::handle_key(c.qp_handle));
  c.changed();
  return std::move(c.qp);
}

void Transport::expire_pending_locked(std::vector<std::unique_ptr<QueuePair>>* to_detach) {
  Tables& t = *tables_;
  const auto now = Clock::now();
  std::vector<std::shared_ptr<Connection>> expired;
  for (const auto& [key, listener] : t.pending_of) {
    auto it = t.connections.find(key);
    if (it != t.connections.end() && it->second->pending_deadline <= now) {
      expired.push_back(it->second);
    }
  }
  for (auto& c : expired) {
    if (auto qp = drop_locked(*c)) to_detach->push_back(std::move(qp));
  }
}

void Transport::receive_on_listener(Listener::State& l, const Packet& p, Outbox& out) {
  Tables& t = *tables_;
  if (p.type == PacketType::kRst) return;
  if (p.type == PacketType::kRequest) {
    // An old peer (no notify protocol bits): only the queue-state protocol
    // is spoken here, so it is refused as a port nobody serves.
    t.refuse(p.src_cid, Refusal::kOutOfTurn,
             "an old-protocol REQUEST from " + to_string({p.src_cid, p.src_port}) +
                 " (only REQUEST2 with the queue-state protocol is served); reset");
    out.reply(p, PacketType::kRst);
    return;
  }
  if (p.type != PacketType::kRequest2 || p.size == 0 || (p.proto & kProtoQueueState) == 0) {
    out.reply(p, PacketType::kRst);
    return;
  }
  std::vector<std::unique_ptr<QueuePair>> none;
  expire_pending_locked(&none);  // a child has no pair before its OFFER
  if (l.closed || l.pending + l.accept_queue.size() >= l.backlog) {
    out.reply(p, PacketType::kRst);
    return;
  }
  auto c = std::make_shared<Connection>();
  c->transport = weak_from_this();
  c->state = ConnectionState::kPending;
  c->local = Address{p.dst_cid, l.port};
  c->remote = Address{p.src_cid, p.src_port};
  c->qp_size = p.size >= options_.buffer_min_size && p.size <= options_.buffer_max_size
                   ? p.size
                   : options_.buffer_size;
  c->pending_deadline = Clock::now() + options_.pending_timeout;
  const Key key = key_of(*c);
  t.connections[key] = c;
  t.pending_of[key] = std::static_pointer_cast<Listener::State>(
      t.listeners.at(l.port));
  ++l.pending;
  out.reply(p, PacketType::kNegotiate2, c->qp_size, kProtoQueueState);
}

std::unique_ptr<QueuePair> Transport::receive_on_connection(Connection& c, const Packet& p,
                                                            Outbox& out) {
  Tables& t = *tables_;
  auto out_of_turn = [&] {
    t.refuse(p.src_cid, Refusal::kOutOfTurn,
             std::string(packet_type_name(p.type)) + " from " + to_string(c.remote) + " to " +
                 to_string(c.local) + " out of turn; ignored");
  };
  switch (c.state) {
    case ConnectionState::kConnecting:
      switch (p.type) {
        case PacketType::kNegotiate2:
          if (c.negotiated || p.size == 0 || (p.proto & kProtoQueueState) == 0) {
            c.error = EPROTO;
            out.reply(p, PacketType::kRst);
          } else {
            c.negotiated = true;
            c.qp_size = p.size;
            c.local.cid = p.dst_cid;  // as the peer sees us
          }
          break;
        case PacketType::kAttach:
          if (!c.negotiated || !proto::same_handle(p.handle, c.qp_handle)) {
            c.error = EPROTO;
            out.reply(p, PacketType::kRst);
          } else {
            c.state = ConnectionState::kEstablished;
          }
          break;
        case PacketType::kRst:
          c.error = ECONNRESET;
          break;
        case PacketType::kInvalid:
          // An old server that does not know REQUEST2: the old protocol is
          // not spoken here.
          c.error = EPROTO;
          break;
        default:
          c.error = EPROTO;
          out.reply(p, PacketType::kRst);
          break;
      }
      c.changed();
      return nullptr;
    case ConnectionState::kPending: {
      if (p.type == PacketType::kRst) return drop_locked(c);
      if (p.type != PacketType::kOffer || proto::is_invalid(p.handle)) {
        out_of_turn();
        out.reply(p, PacketType::kRst);
        return drop_locked(c);
      }
      std::unique_ptr<QueuePair> qp;
      vmci_handle handle = p.handle;
      const uint32_t flags =
          VMCI_QPFLAG_ATTACH_ONLY | (c.remote.cid == c.local.cid ? VMCI_QPFLAG_LOCAL : 0);
      const int status = alloc_queue_pair(&qp, &handle, c.qp_size, c.remote.cid, flags);
      if (status < VMCI_SUCCESS) {
        t.refuse(p.src_cid, Refusal::kOutOfTurn,
                 "cannot attach to the queue pair " + proto::to_string(p.handle) + " that " +
                     to_string(c.remote) + " offered: VMCI status " + std::to_string(status) +
                     "; reset");
        out.reply(p, PacketType::kRst);
        return drop_locked(c);
      }
      auto listener_it = t.pending_of.find(key_of(c));
      std::shared_ptr<Listener::State> listener =
          listener_it == t.pending_of.end() ? nullptr : listener_it->second.lock();
      if (listener_it != t.pending_of.end()) t.pending_of.erase(listener_it);
      c.qp = std::move(qp);
      c.qp_handle = handle;
      c.start_window();
      t.by_queue_pair[proto::handle_key(handle)] = t.connections.at(key_of(c));
      if (!listener || listener->closed) {
        if (listener) --listener->pending;
        out.reply(p, PacketType::kRst);
        return drop_locked(c);
      }
      // Still counted in the backlog (pending) until it is in the accept
      // queue, after its ATTACH has gone.
      c.state = ConnectionState::kEstablished;
      out.reply(p, PacketType::kAttach, handle_word(handle));
      out.accept_after_sending(listener, t.connections.at(key_of(c)));
      return nullptr;
    }
    case ConnectionState::kEstablished:
      switch (p.type) {
        case PacketType::kWrote:
        case PacketType::kRead:
          break;
        case PacketType::kShutdown:
          c.peer_shutdown |= static_cast<uint32_t>(p.mode) & kShutdownMask;
          break;
        case PacketType::kRst:
          // As a full shutdown: what is queued can still be read.
          c.peer_shutdown = kShutdownMask;
          break;
        default:
          out_of_turn();
          return nullptr;
      }
      c.changed();
      return nullptr;
    case ConnectionState::kClosed:
      break;
  }
  return nullptr;
}

// --- Listener --------------------------------------------------------------

Listener::Listener(std::shared_ptr<State> state) : state_(std::move(state)) {}

Listener::~Listener() { close(); }

Address Listener::local_address() const {
  auto t = state_->transport.lock();
  return Address{t ? t->local_cid() : VMCI_INVALID_ID, state_->port};
}

size_t Listener::ready() const {
  auto t = state_->transport.lock();
  if (!t) return 0;
  std::lock_guard lock(t->tables_->mutex);
  return state_->accept_queue.size();
}

std::unique_ptr<Stream> Listener::accept(Timeout timeout, std::error_code& ec) {
  auto t = state_->transport.lock();
  if (!t) {
    ec = make_error(EINVAL);
    return nullptr;
  }
  const auto deadline = deadline_of(timeout);
  std::unique_lock lock(t->tables_->mutex);
  auto ready = [&] { return state_->closed || !state_->accept_queue.empty(); };
  if (deadline) {
    if (!state_->changed_cv.wait_until(lock, *deadline, ready)) {
      ec = make_error(EAGAIN);
      return nullptr;
    }
  } else {
    state_->changed_cv.wait(lock, ready);
  }
  if (state_->closed) {
    ec = make_error(EINVAL);
    return nullptr;
  }
  auto c = std::move(state_->accept_queue.front());
  state_->accept_queue.pop_front();
  ec.clear();
  return std::unique_ptr<Stream>(new Stream(std::move(c)));
}

void Listener::close() {
  auto t = state_->transport.lock();
  if (!t) return;
  std::vector<std::unique_ptr<QueuePair>> pairs;
  {
    std::lock_guard lock(t->tables_->mutex);
    if (state_->closed) return;
    state_->closed = true;
    t->tables_->listeners.erase(state_->port);
    for (auto& c : state_->accept_queue) {
      if (auto qp = t->drop_locked(*c)) pairs.push_back(std::move(qp));
    }
    state_->accept_queue.clear();
    // Children still waiting for their OFFER go too.
    std::vector<std::shared_ptr<Connection>> children;
    for (const auto& [key, listener] : t->tables_->pending_of) {
      if (listener.lock() == state_) children.push_back(t->tables_->connections.at(key));
    }
    for (auto& c : children) t->drop_locked(*c);
    state_->changed();
  }
  for (auto& qp : pairs) t->endpoint_.qpair_detach(&qp);
}

// --- Stream ----------------------------------------------------------------

Stream::Stream(std::shared_ptr<Connection> connection) : connection_(std::move(connection)) {}

Stream::~Stream() { close(); }

Address Stream::local_address() const {
  auto t = connection_->transport.lock();
  if (!t) return connection_->local;
  std::lock_guard lock(t->tables_->mutex);
  return connection_->local;
}

Address Stream::remote_address() const {
  auto t = connection_->transport.lock();
  if (!t) return connection_->remote;
  std::lock_guard lock(t->tables_->mutex);
  return connection_->remote;
}

size_t Stream::read_some(void* buf, size_t size, Timeout timeout, std::error_code& ec, bool peek) {
  Connection& c = *connection_;
  auto t = c.transport.lock();
  if (!t) {
    ec = make_error(ENOTCONN);
    return 0;
  }
  const auto deadline = deadline_of(timeout);
  std::unique_lock lock(t->tables_->mutex);
  for (;;) {
    if (c.state != ConnectionState::kEstablished) {
      if (c.error != 0) {
        ec = make_error(c.error);
        return 0;
      }
      // Closed here: as a socket after its peer left (SOCK_DONE), 0.
      ec = c.peer_shutdown == kShutdownMask ? std::error_code() : make_error(ENOTCONN);
      return 0;
    }
    if ((c.shutdown & kReceiveShutdown) != 0 || size == 0) {
      ec.clear();
      return 0;
    }
    const int64_t ready = c.qp->consume_buf_ready();
    if (ready > 0) {
      const size_t want = std::min<size_t>(size, static_cast<size_t>(ready));
      const int64_t got = peek ? c.qp->peek(buf, want) : c.qp->dequeue(buf, want);
      if (got > 0 && !peek && t->options_.capture) {
        t->options_.capture->payload(c.remote.cid, c.remote.port, c.local.cid, c.local.port,
                                     {static_cast<const uint8_t*>(buf), static_cast<size_t>(got)});
      }
      if (got > 0) {
        // The queue was full: its writer may be waiting for room.
        const bool tell = !peek && c.read_notify_due(got);
        lock.unlock();
        if (tell) t->notify_peer(c, PacketType::kRead);
        ec.clear();
        return static_cast<size_t>(got);
      }
    }
    if ((c.peer_shutdown & kSendShutdown) != 0) {  // nothing more will come
      ec.clear();
      return 0;
    }
    // About to wait for data: the window grows, which may release a writer
    // still waiting for room.
    c.window = std::min(c.window + kPage, c.qp_size);
    if (c.read_notify_due(0)) {
      lock.unlock();
      t->notify_peer(c, PacketType::kRead);
      lock.lock();
      continue;
    }
    if (!wait_for_change(c, lock, deadline)) {
      ec = make_error(EAGAIN);
      return 0;
    }
  }
}

size_t Stream::write_some(const void* buf, size_t size, Timeout timeout, std::error_code& ec) {
  Connection& c = *connection_;
  auto t = c.transport.lock();
  if (!t) {
    ec = make_error(ENOTCONN);
    return 0;
  }
  const auto deadline = deadline_of(timeout);
  std::unique_lock lock(t->tables_->mutex);
  for (;;) {
    if (c.state != ConnectionState::kEstablished) {
      ec = make_error(c.error != 0                         ? c.error
                      : c.peer_shutdown == kShutdownMask ? EPIPE
                                                          : ENOTCONN);
      return 0;
    }
    if ((c.shutdown & kSendShutdown) != 0 || (c.peer_shutdown & kReceiveShutdown) != 0) {
      ec = make_error(EPIPE);
      return 0;
    }
    if (size == 0) {
      ec.clear();
      return 0;
    }
    const int64_t room = c.qp->produce_free_space();
    if (room > 0) {
      const size_t n = std::min<size_t>(size, static_cast<size_t>(room));
      const int64_t put = c.qp->enqueue(buf, n);
      if (put > 0 && t->options_.capture) {
        t->options_.capture->payload(c.local.cid, c.local.port, c.remote.cid, c.remote.port,
                                     {static_cast<const uint8_t*>(buf), static_cast<size_t>(put)});
      }
      if (put > 0) {
        // The queue was empty: its reader may be asleep.
        const bool tell = c.qp->produce_buf_ready() == put;
        lock.unlock();
        if (tell) t->notify_peer(c, PacketType::kWrote);
        ec.clear();
        return static_cast<size_t>(put);
      }
      if (put < 0 && put != VMCI_ERROR_QUEUEPAIR_NOSPACE) {  // the peer's memory is gone
        ec = make_error(EPIPE);
        return 0;
      }
    }
    if (!wait_for_change(c, lock, deadline)) {
      ec = make_error(EAGAIN);
      return 0;
    }
  }
}

size_t Stream::write_all(const void* buf, size_t size, std::error_code& ec, Timeout timeout) {
  const auto* bytes = static_cast<const uint8_t*>(buf);
  size_t done = 0;
  while (done < size) {
    done += write_some(bytes + done, size - done, timeout, ec);
    if (ec) break;
  }
  return done;
}

std::error_code Stream::shutdown(uint32_t mode) {
  Connection& c = *connection_;
  auto t = c.transport.lock();
  if ((mode & ~kShutdownMask) != 0 || mode == 0) return make_error(EINVAL);
  if (!t) return make_error(ENOTCONN);
  {
    std::lock_guard lock(t->tables_->mutex);
    if (c.state != ConnectionState::kEstablished) return make_error(ENOTCONN);
    c.shutdown |= mode;
    c.changed();
  }
  Outbox out;
  out.add(PacketType::kShutdown, c.remote.cid, c.local.port, c.remote.port, mode);
  out.send(*t);
  return {};
}

size_t Stream::readable() const {
  auto t = connection_->transport.lock();
  if (!t) return 0;
  std::lock_guard lock(t->tables_->mutex);
  if (connection_->state != ConnectionState::kEstablished) return 0;
  return static_cast<size_t>(std::max<int64_t>(connection_->qp->consume_buf_ready(), 0));
}

size_t Stream::writable() const {
  auto t = connection_->transport.lock();
  if (!t) return 0;
  std::lock_guard lock(t->tables_->mutex);
  if (connection_->state != ConnectionState::kEstablished) return 0;
  return static_cast<size_t>(std::max<int64_t>(connection_->qp->produce_free_space(), 0));
}

uint32_t Stream::peer_shutdown() const {
  auto t = connection_->transport.lock();
  if (!t) return kShutdownMask;
  std::lock_guard lock(t->tables_->mutex);
  return connection_->peer_shutdown;
}

uint32_t Stream::wait_for_peer_shutdown(uint32_t bits, Timeout timeout) {
  auto t = connection_->transport.lock();
  if (!t) return kShutdownMask;
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  std::unique_lock lock(t->tables_->mutex);
  Connection& c = *connection_;
  while ((c.peer_shutdown & bits) != bits && c.state != ConnectionState::kClosed) {
    if (!wait_for_change(c, lock, deadline)) break;
  }
  return c.peer_shutdown;
}

void Stream::close() {
  auto t = connection_->transport.lock();
  if (!t) return;
  std::unique_ptr<QueuePair> qp;
  {
    std::lock_guard lock(t->tables_->mutex);
    if (connection_->state == ConnectionState::kClosed) return;
    qp = t->drop_locked(*connection_);
    if (qp && t->options_.capture) {
      const Connection& c = *connection_;
      t->options_.capture->closed(c.local.cid, c.local.port, c.remote.cid, c.remote.port);
    }
  }
  // No SHUTDOWN or RST: the peer learns from the pair's detach.
  if (qp) t->endpoint_.qpair_detach(&qp);
}

bool Stream::when_ready(Wait what, std::function<void()> ready) {
  Connection& c = *connection_;
  auto t = c.transport.lock();
  if (!t) return false;
  std::lock_guard lock(t->tables_->mutex);
  if (c.state != ConnectionState::kEstablished || c.error != 0) return false;
  if (what == Wait::kRead) {
    if (c.qp->consume_buf_ready() > 0 || (c.shutdown & kReceiveShutdown) != 0 ||
        (c.peer_shutdown & kSendShutdown) != 0) {
      return false;
    }
  } else if (c.qp->produce_free_space() > 0 || (c.shutdown & kSendShutdown) != 0 ||
             (c.peer_shutdown & kReceiveShutdown) != 0) {
    return false;
  }
  c.waiters.push_back(std::move(ready));
  return true;
}

bool Listener::when_ready(std::function<void()> ready) {
  auto t = state_->transport.lock();
  if (!t) return false;
  std::lock_guard lock(t->tables_->mutex);
  if (state_->closed || !state_->accept_queue.empty()) return false;
  state_->waiters.push_back(std::move(ready));
  return true;
}

}  // namespace vmci::vsock
