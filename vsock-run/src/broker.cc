#include "broker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <cstring>
#include <thread>
#include <vector>

namespace vmci::vsock_run {

using vsock::Address;

// One vSockets socket of the program, as the broker holds it. Its threads
// (the watch, a stream's pump, a listener's announcer, a datagram
// socket's receiver) hold it too.
struct BrokerSocket {
  ~BrokerSocket() {
    if (end >= 0) ::close(end);
    if (listener_wake >= 0) ::close(listener_wake);
  }

  uint64_t id = 0;
  int type = SOCK_STREAM;
  int end = -1;  // the broker's end of the socketpair
  // The up pump: bytes it took from the program and has not yet put into
  // the connection, and whether it is over (Broker::drain reads both).
  std::atomic<uint64_t> up_in_hand{0};
  std::atomic<bool> up_over{false};
  std::mutex mutex;
  bool ended = false;  // the program closed its end: nothing more happens
  // Which ways the broker shut its end itself (the peer's shutdown or
  // departure); once both, its end hangs up whether the program holds its
  // own end or not.
  bool broker_shut_read = false;
  bool broker_shut_write = false;
  int pumps = 0;  // a stream's pump threads still running (they use `end`)
  std::condition_variable pumps_done;

  // Under the lock: shuts the broker's end as the peer shut the connection.
  void shut(int how) {
    if (end < 0) return;
    ::shutdown(end, how);
    if (how != SHUT_WR) broker_shut_read = true;
    if (how != SHUT_RD) broker_shut_write = true;
  }
  Address local{kCidAny, kPortAny};
  Address peer{kCidAny, kPortAny};
  bool connecting = false;
  int error = 0;  // SO_ERROR
  uint64_t buffer_size = 262144, buffer_min = 128, buffer_max = 262144;
  uint64_t connect_timeout_us = 2000000;
  std::shared_ptr<vsock::Listener> listener;
  int listener_wake = -1;  // an eventfd: the listener's state changed
  std::atomic<bool> listener_armed{false};  // a when_ready callback is pending
  uint64_t announced = 0;  // bytes written to a listener's end: connections to accept
  std::shared_ptr<vsock::Stream> stream;
  std::shared_ptr<vsock::DatagramSocket> datagram;
};

struct SocketTable {
  std::mutex mutex;
  uint64_t next_id = 1;
  std::map<uint64_t, std::shared_ptr<BrokerSocket>> sockets;
  // Every stream whose pumps were started, ended or not (Broker::drain:
  // a socket its program closed leaves `sockets` while its pump may still
  // hold bytes).
  std::vector<std::weak_ptr<BrokerSocket>> pumped;

  std::shared_ptr<BrokerSocket> find(uint64_t id) {
    std::lock_guard lock(mutex);
    auto it = sockets.find(id);
    return it == sockets.end() ? nullptr : it->second;
  }
  void forget(uint64_t id) {
    std::lock_guard lock(mutex);
    sockets.erase(id);
  }
  // Ends now the sockets on `port` (listening, or datagram) whose program
  // closed them, rather than when their watch gets to it: a close is
  // synchronous for a program, which may bind the port again at once.
  // The caller tries the port again whatever this found: the watch may
  // have ended such a socket since the caller's first try.
  void end_closed_on_port(uint32_t port);
};

namespace {

int negated(int errno_value) { return -errno_value; }

void signal_eventfd(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(fd, &one, sizeof one);
}

bool send_all(int fd, const uint8_t* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Waits until the program closes its end of `s` (the end hangs up).
void wait_for_hang_up(int end) {
  pollfd p{end, 0, 0};
  while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
  }
}

// Sends `reply` on `connection`, with `fd` attached if it is one.
void send_reply(int connection, const Reply& reply, int fd) {
  iovec iov{const_cast<Reply*>(&reply), sizeof reply};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  DescriptorControl control;
  attach_descriptor(msg, control, fd);
  ::sendmsg(connection, &msg, MSG_NOSIGNAL);
}

// Binds the program's end to the name that says it is socket `id`.
bool name_end(int end, uint64_t id) {
  const std::string name = end_name(::getpid(), id);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  return ::bind(end, reinterpret_cast<sockaddr*>(&addr),
                static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())) == 0;
}

// Under the socket's lock, once the program closed its end: what the
// socket holds goes (a pumped stream is closed by its pump, once it has
// passed on what the program wrote before it closed).
void end_socket_locked(BrokerSocket& s) {
  s.ended = true;
  if (s.stream && s.pumps == 0) s.stream->close();
  if (s.listener) s.listener->close();
  if (s.listener_wake >= 0) signal_eventfd(s.listener_wake);
  if (s.datagram) {
    s.datagram->close();
    s.datagram.reset();
  }
}

// Whether the program has closed its end of `s` (under its lock): its end
// hangs up, and not because the broker shut it both ways itself.
bool program_closed_locked(const BrokerSocket& s) {
  if (s.end < 0 || s.ended || (s.broker_shut_read && s.broker_shut_write)) return false;
  pollfd p{s.end, 0, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

// The watch: when the program closes its end, the socket's connection,
// listener or datagram handle goes, and so does its entry. When the broker
// shut its end both ways (the peer left), the hang-up says nothing of the
// program: the connection is over, so the broker closes its end (having
// read what the program wrote, so that the program reads what is left and
// then the end, not ECONNRESET) and keeps the entry, which still answers
// the socket's names and SO_ERROR.
void start_watch(std::weak_ptr<SocketTable> table, std::shared_ptr<BrokerSocket> s) {
  std::thread([table, s] {
    wait_for_hang_up(s->end);
    {
      std::unique_lock lock(s->mutex);
      if (s->broker_shut_read && s->broker_shut_write) {
        s->pumps_done.wait(lock, [&] { return s->pumps == 0; });
        std::vector<uint8_t> drain(65536);
        while (::recv(s->end, drain.data(), drain.size(), MSG_DONTWAIT) > 0) {
        }
        if (s->stream) s->stream->close();
        ::close(s->end);
        s->end = -1;
        return;
      }
      end_socket_locked(*s);
    }
    if (auto t = table.lock()) t->forget(s->id);
  }).detach();
}

// Pumps a connected stream: the program's bytes into the connection, the
// connection's bytes to the program, and each end's shutdown to the other.
void start_stream_pump(SocketTable& table, const std::shared_ptr<BrokerSocket>& s) {
  {
    std::lock_guard lock(table.mutex);
    std::erase_if(table.pumped, [](const std::weak_ptr<BrokerSocket>& w) { return w.expired(); });
    table.pumped.push_back(s);
  }
  std::shared_ptr<vsock::Stream> stream = s->stream;
  {
    std::lock_guard lock(s->mutex);
    s->pumps = 3;
  }
  auto done = [](BrokerSocket& socket) {
    --socket.pumps;
    socket.pumps_done.notify_all();
  };
  // Up: the program writes, the peer reads.
  std::thread([s, stream, done] {
    std::vector<uint8_t> buf(65536);
    struct Over {  // however the pump ends, drain() stops waiting for it
      BrokerSocket& s;
      ~Over() { s.up_over = true; }
    } over{*s};
    for (;;) {
      // The bytes are claimed (up_in_hand) before they leave the socket,
      // so that drain() never counts fewer than the pump still owes.
      pollfd p{s->end, POLLIN, 0};
      if (::poll(&p, 1, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      int available = 0;
      if (::ioctl(s->end, FIONREAD, &available) != 0) break;
      if (available <= 0) {
        char byte;
        const ssize_t peeked = ::recv(s->end, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (peeked == 0 || (peeked < 0 && errno != EAGAIN && errno != EINTR)) {
          break;  // the program shut down writing, or closed it
        }
        continue;  // bytes came after FIONREAD: count them first
      }
      s->up_in_hand = static_cast<uint64_t>(available);
      const ssize_t n = ::recv(s->end, buf.data(),
                               std::min(buf.size(), static_cast<size_t>(available)), 0);
      if (n <= 0) {
        s->up_in_hand = 0;
        if (n < 0 && errno == EINTR) continue;
        break;
      }
      s->up_in_hand = static_cast<uint64_t>(n);
      std::error_code ec;
      stream->write_all(buf.data(), static_cast<size_t>(n), ec);
      s->up_in_hand = 0;
      if (ec) {
        // The peer takes no more (it shut down receiving, or left): the
        // program's writes fail with EPIPE from now on.
        std::lock_guard lock(s->mutex);
        s->shut(SHUT_RD);
        done(*s);
        return;
      }
    }
    // A close sends no SHUTDOWN: the peer learns of it from the detach, as
    // from Linux's close. The program's end hangs up when it is closed;
    // unless the broker shut its own end's writing (then a hang-up is also
    // what the program's SHUT_WR makes).
    // (A broker that shut its end's reading ended the loop itself: the
    // program's writes are refused, which says nothing of its own end.)
    std::lock_guard lock(s->mutex);
    pollfd p{s->end, 0, 0};
    const bool closed = ::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) != 0 && !s->broker_shut_write;
    if (closed) {
      stream->close();
    } else if (!s->broker_shut_read) {
      stream->shutdown(vsock::kSendShutdown);
    }
    done(*s);
  }).detach();
  // The peer's receiving end (its SHUT_RD, its departure, a reset): the
  // program's writes fail with EPIPE from then on, as a kernel socket's.
  std::thread([s, stream, done] {
    const uint32_t peer = stream->wait_for_peer_shutdown(vsock::kReceiveShutdown, std::nullopt);
    std::lock_guard lock(s->mutex);
    if ((peer & vsock::kReceiveShutdown) != 0 && !s->broker_shut_read) s->shut(SHUT_RD);
    done(*s);
  }).detach();
  // Down: the peer writes, the program reads.
  std::thread([s, stream, done] {
    std::vector<uint8_t> buf(65536);
    for (;;) {
      std::error_code ec;
      const size_t n = stream->read_some(buf.data(), buf.size(), std::nullopt, ec);
      if (ec || n == 0) break;  // the peer's end of stream, a reset, or a close
      if (!send_all(s->end, buf.data(), n)) {  // the program closed its end
        std::lock_guard lock(s->mutex);
        done(*s);
        return;
      }
    }
    // The program reads its end of stream; once the peer takes no more
    // either (it left, or shut down receiving), its writes fail with EPIPE.
    // Both at once when both are known: a program woken by the end of
    // stream must find its writes refused already.
    std::lock_guard lock(s->mutex);
    const bool peer_reads_no_more = (stream->peer_shutdown() & vsock::kReceiveShutdown) != 0;
    s->shut(peer_reads_no_more && !s->broker_shut_read ? SHUT_RDWR : SHUT_WR);
    done(*s);
  }).detach();
}

// Announces a listener's connections on its end: one byte per connection
// ready to accept; accept() takes one back.
void start_listener_announcer(const std::shared_ptr<BrokerSocket>& s) {
  std::thread([s] {
    for (;;) {
      std::shared_ptr<vsock::Listener> listener;
      {
        std::lock_guard lock(s->mutex);
        if (s->ended || !s->listener) return;
        listener = s->listener;
        const uint64_t ready = listener->ready();
        while (s->announced < ready) {
          const uint8_t byte = 1;
          if (::send(s->end, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) break;
          ++s->announced;
        }
      }
      // Until a connection comes (when_ready), one is accepted, or the
      // program closes the listener (both signal the eventfd).
      const int wake = s->listener_wake;
      if (!s->listener_armed.exchange(true)) {
        const bool armed = listener->when_ready([s, wake] {
          s->listener_armed = false;
          signal_eventfd(wake);
        });
        if (!armed) s->listener_armed = false;
      }
      pollfd p{wake, POLLIN, 0};
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      uint64_t count;
      [[maybe_unused]] ssize_t ignored = ::read(wake, &count, sizeof count);
    }
  }).detach();
}

// Hands a datagram socket's arrivals to the program, each behind its
// source, until the socket is closed.
void start_datagram_receiver(const std::shared_ptr<BrokerSocket>& s,
                             std::shared_ptr<vsock::DatagramSocket> socket) {
  std::thread([s, socket] {
    std::vector<uint8_t> buf(sizeof(DatagramHeader) + vsock::kMaxDatagramPayload);
    for (;;) {
      Address from;
      std::error_code ec;
      bool truncated = false;
      const size_t n = socket->receive_from(buf.data() + sizeof(DatagramHeader),
                                            vsock::kMaxDatagramPayload, &from, std::nullopt, ec,
                                            &truncated);
      if (ec) return;  // closed
      const DatagramHeader header{from.cid, from.port};
      std::memcpy(buf.data(), &header, sizeof header);
      // A program that does not read loses what its socket cannot hold, as
      // a kernel socket would.
      ::send(s->end, buf.data(), sizeof header + n, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  }).detach();
}

}  // namespace

void SocketTable::end_closed_on_port(uint32_t port) {
  std::vector<std::shared_ptr<BrokerSocket>> all;
  {
    std::lock_guard lock(mutex);
    for (auto& [id, s] : sockets) all.push_back(s);
  }
  for (auto& s : all) {
    std::lock_guard lock(s->mutex);
    if ((s->listener || s->datagram) && s->local.port == port && program_closed_locked(*s)) {
      end_socket_locked(*s);
    }
  }
}

Broker::Broker(Endpoint& endpoint, std::string socket_path,
               std::shared_ptr<vsock::Capture> capture)
    : endpoint_(endpoint), socket_path_(std::move(socket_path)), capture_(std::move(capture)),
      table_(std::make_shared<SocketTable>()) {}

namespace {

// Under the socket's lock: bytes the program wrote that are still unread
// in the broker's end of its socketpair.
uint64_t unread_locked(const BrokerSocket& s) {
  int unread = 0;
  if (s.end < 0 || ::ioctl(s.end, FIONREAD, &unread) != 0 || unread < 0) return 0;
  return static_cast<uint64_t>(unread);
}

// What the launcher reports for a stream whose bytes it gives up on.
std::string describe_held(BrokerSocket& s) {
  std::lock_guard lock(s.mutex);
  return std::to_string(s.local.cid) + ":" + std::to_string(s.local.port) + " -> " +
         std::to_string(s.peer.cid) + ":" + std::to_string(s.peer.port) + ": " +
         std::to_string(unread_locked(s)) + " bytes unread and " + std::to_string(s.up_in_hand) +
         " in the pump's hands; the queue pair has room for " +
         std::to_string(s.stream ? s.stream->writable() : 0);
}

}  // namespace

std::vector<std::string> Broker::drain(std::chrono::milliseconds stall,
                                       const volatile std::sig_atomic_t* give_up) const {
  auto deadline = std::chrono::steady_clock::now() + stall;
  uint64_t last = UINT64_MAX;
  for (;;) {
    uint64_t pending = 0;
    std::vector<std::shared_ptr<BrokerSocket>> holding;
    {
      std::lock_guard lock(table_->mutex);
      for (const auto& weak : table_->pumped) {
        const auto s = weak.lock();
        if (!s || s->up_over) continue;
        // The watch closes `end` under the socket's lock.
        std::lock_guard socket_lock(s->mutex);
        const uint64_t left = unread_locked(*s) + s->up_in_hand;  // not yet in the connection
        if (left == 0) continue;
        pending += left;
        holding.push_back(s);
      }
    }
    if (pending == 0) return {};
    const auto now = std::chrono::steady_clock::now();
    if (pending < last) {  // the peers are taking bytes: wait on
      last = pending;
      deadline = now + stall;
    }
    if (now > deadline || (give_up != nullptr && *give_up != 0)) {
      std::vector<std::string> held;
      for (const auto& s : holding) held.push_back(describe_held(*s));
      return held;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Broker::~Broker() {
  if (stop_fd_ >= 0) signal_eventfd(stop_fd_);
  if (server_.joinable()) server_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
  ::unlink(socket_path_.c_str());
  std::lock_guard lock(table_->mutex);
  for (auto& [id, s] : table_->sockets) {
    std::lock_guard socket_lock(s->mutex);
    s->ended = true;
    if (s->stream) s->stream->close();
    if (s->listener) s->listener->close();
    if (s->datagram) s->datagram->close();
    ::shutdown(s->end, SHUT_RDWR);
  }
}

bool Broker::start(std::string* error) {
  std::error_code ec;
  vsock::TransportOptions options;
  options.log = [](const std::string&) {};
  options.capture = capture_;
  transport_ = vsock::Transport::open(endpoint_, options, ec);
  if (!transport_) {
    *error = "opening vSockets on the VMCI connection: " + ec.message();
    return false;
  }
  sockaddr_un addr{};
  if (socket_path_.size() >= sizeof addr.sun_path) {
    *error = "the broker's socket path is too long: " + socket_path_;
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  listen_fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    *error = "the broker's socket " + socket_path_ + ": " + std::strerror(errno);
    return false;
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  server_ = std::thread([this] { serve(); });
  return true;
}

void Broker::serve() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    // A request may wait (a blocking connect): each has its thread.
    std::thread([this, connection] {
      answer(connection);
      ::close(connection);
    }).detach();
  }
}

void Broker::answer(int connection) {
  std::vector<uint8_t> message(sizeof(Request) + vsock::kMaxDatagramPayload + 1);
  iovec iov{message.data(), message.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  DescriptorControl control;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  const ssize_t n = ::recvmsg(connection, &msg, MSG_CMSG_CLOEXEC);
  const int attached = n >= 0 ? attached_descriptor(msg) : -1;
  int reply_fd = -1;
  Reply reply{};
  if (n < static_cast<ssize_t>(sizeof(Request)) || (msg.msg_flags & MSG_TRUNC) != 0) {
    reply.result = negated(EMSGSIZE);
  } else {
    Request request;
    std::memcpy(&request, message.data(), sizeof request);
    reply = handle(request, message.data() + sizeof request,
                   static_cast<size_t>(n) - sizeof request, attached, &reply_fd);
  }
  send_reply(connection, reply, reply_fd);
  if (reply_fd >= 0) ::close(reply_fd);
  if (attached >= 0) ::close(attached);
}

std::shared_ptr<BrokerSocket> Broker::make_socket(int type, int* program_end, int* error) {
  int pair[2];
  const int unix_type = type == SOCK_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
  if (::socketpair(AF_UNIX, unix_type | SOCK_CLOEXEC, 0, pair) != 0) {
    *error = errno;
    return nullptr;
  }
  auto s = std::make_shared<BrokerSocket>();
  s->type = type;
  s->end = pair[0];
  {
    std::lock_guard lock(table_->mutex);
    s->id = table_->next_id++;
  }
  if (!name_end(pair[1], s->id)) {
    *error = errno;
    ::close(pair[1]);
    return nullptr;
  }
  {
    std::lock_guard lock(table_->mutex);
    table_->sockets[s->id] = s;
  }
  start_watch(table_, s);
  *program_end = pair[1];
  return s;
}

Reply Broker::handle(const Request& r, const uint8_t* payload, size_t payload_size, int attached,
                     int* reply_fd) {
  Reply reply{};
  if (r.op == Op::kSocket) {
    if (r.type != SOCK_STREAM && r.type != SOCK_DGRAM) {
      reply.result = negated(ESOCKTNOSUPPORT);
      return reply;
    }
    int error = 0;
    auto s = make_socket(static_cast<int>(r.type), reply_fd, &error);
    if (!s) {
      reply.result = negated(error);
      return reply;
    }
    reply.id = s->id;
    return reply;
  }
  if (r.op == Op::kLocalCid) {
    reply.cid = transport_->local_cid();
    return reply;
  }
  auto s = table_->find(r.id);
  if (!s) {
    reply.result = negated(EBADF);
    return reply;
  }
  switch (r.op) {
    case Op::kBind:
      return bind(s, r);
    case Op::kListen:
      return listen(s, r);
    case Op::kConnect:
      return connect(s, r, attached);
    case Op::kAccept:
      return accept(*s, reply_fd);
    case Op::kLocalName: {
      std::lock_guard lock(s->mutex);
      reply.cid = s->local.port == kPortAny ? kCidAny : transport_->local_cid();
      reply.port = s->local.port;
      return reply;
    }
    case Op::kPeerName: {
      std::lock_guard lock(s->mutex);
      if (s->peer.port == kPortAny) {
        reply.result = negated(ENOTCONN);
        return reply;
      }
      reply.cid = s->peer.cid;
      reply.port = s->peer.port;
      return reply;
    }
    case Op::kShutdown:
      return shutdown(*s, r);
    case Op::kGetOption:
      return get_option(*s, r);
    case Op::kSetOption:
      return set_option(*s, r);
    case Op::kSendTo:
      return send_to(s, r, payload, payload_size);
    case Op::kSocket:
    case Op::kLocalCid:
      break;
  }
  reply.result = negated(EINVAL);
  return reply;
}

Reply Broker::bind(const std::shared_ptr<BrokerSocket>& socket, const Request& r) {
  Reply reply{};
  BrokerSocket& s = *socket;
  std::unique_lock lock(s.mutex);
  if (s.local.port != kPortAny || s.stream || s.listener) {
    reply.result = negated(EINVAL);  // bound already
    return reply;
  }
  const vmci_id own = transport_->local_cid();
  if (r.cid != kCidAny && r.cid != own) {
    reply.result = negated(EADDRNOTAVAIL);
    return reply;
  }
  if (s.type == SOCK_DGRAM) {
    std::error_code ec;
    auto bind_port = [&] {
      return vsock::DatagramSocket::bind(endpoint_, {kCidAny, r.port}, ec,
                                         vsock::DatagramSocket::kDefaultReceiveBytes, capture_);
    };
    std::shared_ptr<vsock::DatagramSocket> bound = bind_port();
    if (!bound && ec.value() == EADDRINUSE) {
      lock.unlock();
      table_->end_closed_on_port(r.port);
      lock.lock();
      bound = bind_port();
    }
    if (!bound) {
      reply.result = negated(ec.value());
      return reply;
    }
    s.datagram = std::move(bound);
    s.local = {own, s.datagram->local_address().port};
    auto receiving = s.datagram;
    lock.unlock();
    start_datagram_receiver(socket, receiving);
    return reply;
  }
  // A stream port is taken when the socket listens or connects from it
  // (vmci/vsock/transport.h); until then it is only this socket's choice.
  s.local = {own, r.port};
  return reply;
}

Reply Broker::listen(const std::shared_ptr<BrokerSocket>& s, const Request& r) {
  Reply reply{};
  std::unique_lock lock(s->mutex);
  if (s->type != SOCK_STREAM) {
    reply.result = negated(EOPNOTSUPP);
    return reply;
  }
  if (s->stream || s->connecting) {
    reply.result = negated(EINVAL);
    return reply;
  }
  if (s->listener) return reply;  // listening already
  if (s->local.port == kPortAny) {
    reply.result = negated(EINVAL);  // Linux's vSockets: only a bound socket listens
    return reply;
  }
  std::error_code ec;
  const int backlog = static_cast<int>(std::clamp<uint64_t>(r.value, 1, 65535));
  std::unique_ptr<vsock::Listener> listener = transport_->listen(s->local.port, backlog, ec);
  if (!listener && ec.value() == EADDRINUSE) {
    lock.unlock();
    table_->end_closed_on_port(s->local.port);
    lock.lock();
    listener = transport_->listen(s->local.port, backlog, ec);
  }
  if (!listener) {
    reply.result = negated(ec.value());
    return reply;
  }
  s->listener = std::move(listener);
  s->listener_wake = ::eventfd(0, EFD_CLOEXEC);
  lock.unlock();
  start_listener_announcer(s);
  return reply;
}

Reply Broker::connect(const std::shared_ptr<BrokerSocket>& s, const Request& r, int program_end) {
  Reply reply{};
  if (s->type == SOCK_DGRAM) {
    int error = 0;
    auto socket = datagram_socket(s, &error);
    if (!socket) {
      reply.result = negated(error);
      return reply;
    }
    socket->connect({r.cid, r.port});
    std::lock_guard lock(s->mutex);
    s->peer = r.cid == kCidAny && r.port == kPortAny ? Address{kCidAny, kPortAny}
                                                     : Address{r.cid, r.port};
    return reply;
  }
  uint32_t local_port;
  std::chrono::milliseconds timeout;
  {
    std::lock_guard lock(s->mutex);
    if (s->stream) {
      reply.result = negated(EISCONN);
      return reply;
    }
    if (s->listener) {
      reply.result = negated(EINVAL);
      return reply;
    }
    if (s->connecting) {
      reply.result = negated(EALREADY);
      return reply;
    }
    s->connecting = true;
    s->error = 0;
    local_port = s->local.port;
    timeout = std::chrono::milliseconds(std::max<uint64_t>(s->connect_timeout_us / 1000, 1));
  }
  // The handshake; the caller starts the pump. A failure is recorded for
  // SO_ERROR in the same step that ends `connecting` when `record_error`
  // (non-blocking), so that SO_ERROR never reads 0 for a connect that failed.
  auto handshake = [transport = transport_, s, remote = Address{r.cid, r.port}, local_port,
                    timeout](bool record_error) -> int {
    std::error_code ec;
    std::unique_ptr<vsock::Stream> stream = transport->connect(remote, ec, timeout, local_port);
    std::lock_guard lock(s->mutex);
    s->connecting = false;
    if (!stream) {
      if (record_error) s->error = ec.value();
      return ec.value();
    }
    s->stream = std::move(stream);
    s->local = s->stream->local_address();
    s->peer = s->stream->remote_address();
    if (s->ended) s->stream->close();  // the program closed it meanwhile
    return 0;
  };
  if ((r.flags & kNonBlocking) == 0 || program_end < 0) {
    const int error = handshake(false);
    reply.result = error != 0 ? negated(error) : 0;
    if (error == 0) start_stream_pump(*table_, s);
    return reply;
  }
  // Non-blocking: the program's end must not be writable before the
  // handshake is over, so the broker fills it (as its sender) and takes
  // the filler back at the end, after SO_ERROR's answer is in place: POLLOUT
  // then means SO_ERROR says how it went.
  const int end = ::dup(program_end);
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  ::getsockopt(end, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
  const int smallest = 1;
  ::setsockopt(end, SOL_SOCKET, SO_SNDBUF, &smallest, sizeof smallest);
  size_t filled = 0;
  std::vector<uint8_t> filler(4096);
  for (;;) {
    const ssize_t n = ::send(end, filler.data(), filler.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  std::thread([s, end, filled, sndbuf, handshake, table = table_] {
    const int error = handshake(true);
    std::vector<uint8_t> drain(4096);
    for (size_t left = filled; left > 0;) {
      const ssize_t n = ::recv(s->end, drain.data(), std::min(left, drain.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      left -= static_cast<size_t>(n);
    }
    // Half of SO_SNDBUF is what Linux stores for what it was given.
    const int restored = sndbuf / 2;
    ::setsockopt(end, SOL_SOCKET, SO_SNDBUF, &restored, sizeof restored);
    ::close(end);
    if (error == 0) start_stream_pump(*table, s);
  }).detach();
  reply.result = negated(EINPROGRESS);
  return reply;
}

Reply Broker::accept(BrokerSocket& s, int* reply_fd) {
  Reply reply{};
  std::unique_lock lock(s.mutex);
  if (!s.listener) {
    reply.result = negated(EINVAL);
    return reply;
  }
  std::error_code ec;
  std::unique_ptr<vsock::Stream> stream = s.listener->accept(std::chrono::milliseconds(0), ec);
  if (s.announced > 0) --s.announced;
  signal_eventfd(s.listener_wake);  // announce what is left
  lock.unlock();
  if (!stream) {
    reply.result = negated(EAGAIN);
    return reply;
  }
  int error = 0;
  auto child = make_socket(SOCK_STREAM, reply_fd, &error);
  if (!child) {
    reply.result = negated(error);
    return reply;
  }
  {
    std::lock_guard child_lock(child->mutex);
    child->stream = std::move(stream);
    child->local = child->stream->local_address();
    child->peer = child->stream->remote_address();
  }
  start_stream_pump(*table_, child);
  reply.id = child->id;
  reply.cid = child->peer.cid;
  reply.port = child->peer.port;
  return reply;
}

Reply Broker::shutdown(BrokerSocket& s, const Request& r) {
  Reply reply{};
  std::lock_guard lock(s.mutex);
  if (!s.stream) {
    reply.result = negated(ENOTCONN);
    return reply;
  }
  // Writing's end reaches the pump as the end of the program's bytes;
  // receiving's end the socketpair cannot carry: the peer is told here.
  if (r.value == SHUT_RD || r.value == SHUT_RDWR) {
    const std::error_code ec = s.stream->shutdown(vsock::kReceiveShutdown);
    if (ec) reply.result = negated(ec.value());
  }
  return reply;
}

Reply Broker::get_option(BrokerSocket& s, const Request& r) {
  Reply reply{};
  std::lock_guard lock(s.mutex);
  if (r.level == SOL_SOCKET) {
    switch (r.name) {
      case SO_TYPE:
        reply.value = static_cast<uint64_t>(s.type);
        return reply;
      case SO_ERROR:
        reply.value = static_cast<uint64_t>(s.connecting ? 0 : s.error);
        if (!s.connecting) s.error = 0;
        return reply;
      case SO_ACCEPTCONN:
        reply.value = s.listener ? 1 : 0;
        return reply;
      default:
        break;
    }
  }
  if (r.level == kVsockLevel && s.type == SOCK_STREAM) {
    switch (r.name) {
      case kBufferSize:
        reply.value = s.buffer_size;
        return reply;
      case kBufferMinSize:
        reply.value = s.buffer_min;
        return reply;
      case kBufferMaxSize:
        reply.value = s.buffer_max;
        return reply;
      case kConnectTimeoutOld:
      case kConnectTimeoutNew:
        reply.value = s.connect_timeout_us;
        return reply;
      default:
        break;
    }
  }
  reply.result = negated(ENOPROTOOPT);
  return reply;
}

Reply Broker::set_option(BrokerSocket& s, const Request& r) {
  Reply reply{};
  std::lock_guard lock(s.mutex);
  if (r.level == kVsockLevel && s.type == SOCK_STREAM) {
    // As Linux's vsock_update_buffer_size: the size within the bounds, the
    // bounds moving the size.
    switch (r.name) {
      case kBufferSize:
        s.buffer_size = std::clamp(r.value, s.buffer_min, s.buffer_max);
        return reply;
      case kBufferMinSize:
        s.buffer_min = r.value;
        s.buffer_size = std::max(s.buffer_size, r.value);
        return reply;
      case kBufferMaxSize:
        s.buffer_max = r.value;
        s.buffer_size = std::min(s.buffer_size, r.value);
        return reply;
      case kConnectTimeoutOld:
      case kConnectTimeoutNew:
        if (r.value == 0) {
          reply.result = negated(EDOM);
          return reply;
        }
        s.connect_timeout_us = r.value;
        return reply;
      default:
        break;
    }
  }
  reply.result = negated(ENOPROTOOPT);
  return reply;
}

Reply Broker::send_to(const std::shared_ptr<BrokerSocket>& s, const Request& r,
                      const uint8_t* payload, size_t size) {
  Reply reply{};
  if (s->type != SOCK_DGRAM) {
    reply.result = negated(EOPNOTSUPP);
    return reply;
  }
  int error = 0;
  auto socket = datagram_socket(s, &error);
  if (!socket) {
    reply.result = negated(error);
    return reply;
  }
  std::error_code ec;
  const size_t sent = r.cid == kCidAny && r.port == kPortAny
                          ? socket->send(payload, size, ec)
                          : socket->send_to(payload, size, {r.cid, r.port}, ec);
  reply.result = ec ? negated(ec.value()) : static_cast<int32_t>(sent);
  return reply;
}

std::shared_ptr<vsock::DatagramSocket> Broker::datagram_socket(
    const std::shared_ptr<BrokerSocket>& s, int* error) {
  std::shared_ptr<vsock::DatagramSocket> socket;
  {
    std::lock_guard lock(s->mutex);
    if (s->datagram) return s->datagram;
    // Linux binds an unbound datagram socket to any port at its first send.
    std::error_code ec;
    socket = vsock::DatagramSocket::bind(endpoint_, {kCidAny, kPortAny}, ec,
                                         vsock::DatagramSocket::kDefaultReceiveBytes, capture_);
    if (!socket) {
      *error = ec.value();
      return nullptr;
    }
    s->datagram = socket;
    s->local = {transport_->local_cid(), socket->local_address().port};
  }
  start_datagram_receiver(s, socket);
  return socket;
}

}  // namespace vmci::vsock_run
