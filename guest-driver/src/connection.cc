#include "connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "posix_io.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/descriptor_passing.h"
#include "vmci/proto/notify_memory.h"
#include "vmci/proto/socket_path.h"

namespace vmci::guest::internal {
namespace {

constexpr int kHandshakeTimeoutMs = 10000;

void close_all(std::vector<int>* fds) {
  for (int fd : *fds) ::close(fd);
  fds->clear();
}

// Reads one frame and the descriptors sent with it; false with *error on
// end of file, error, a bad header, or descriptors the header does not
// announce.
bool read_frame(int fd, proto::FrameHeader* header, std::vector<uint8_t>* body,
                std::vector<int>* fds, std::string* error) {
  close_all(fds);
  if (!read_exact(fd, header, sizeof *header, fds)) {
    *error = "hostpeer closed the connection";
    return false;
  }
  const auto check = proto::check_frame_header(*header, proto::Direction::kToPeer);
  if (!check.ok) {
    *error = "bad frame from hostpeer: " + check.error;
    return false;
  }
  body->resize(header->body_size);
  if (!read_exact(fd, body->data(), body->size(), fds)) {
    *error = "hostpeer closed the connection inside a frame";
    return false;
  }
  if (fds->size() != header->flags) {
    *error = "hostpeer sent " + std::to_string(fds->size()) + " descriptors with a frame that has " +
             std::to_string(header->flags);
    close_all(fds);
    return false;
  }
  return true;
}

}  // namespace

QueuePairMemoryFrame::~QueuePairMemoryFrame() { close_all(&fds); }

Connection::Reply::Reply(Reply&& other) noexcept
    : result(other.result),
      handle(other.handle),
      fds(std::exchange(other.fds, {})),
      extra(std::move(other.extra)) {}

Connection::Reply& Connection::Reply::operator=(Reply&& other) noexcept {
  if (this != &other) {
    close_all(&fds);
    result = other.result;
    handle = other.handle;
    fds = std::exchange(other.fds, {});
    extra = std::move(other.extra);
  }
  return *this;
}

Connection::Reply::~Reply() { close_all(&fds); }

std::unique_ptr<Connection> Connection::open(const ConnectOptions& options, Sink sink, int* status,
                                             std::string* error, uint8_t features) {
  std::string local_error;
  if (error == nullptr) error = &local_error;
  const std::string path =
      options.socket_path.empty() ? proto::default_socket_path() : options.socket_path;
  const int fd = connect_unix(path, error);
  if (fd < 0) {
    *status = VMCI_ERROR_UNAVAILABLE;
    return nullptr;
  }
  auto fail = [&](int code, const std::string& why) -> std::unique_ptr<Connection> {
    ::close(fd);
    *status = code;
    *error = why;
    return nullptr;
  };

  proto::HelloBody hello{proto::kProtocolMajor,
                         proto::kProtocolMinor,
                         static_cast<uint8_t>(options.role),
                         features,
                         {},
                         options.context_id,
                         options.priv_flags};
  const auto frame = proto::encode_frame(proto::FrameType::kHello, 0, hello);
  if (!write_all(fd, frame.data(), frame.size())) {
    return fail(VMCI_ERROR_UNAVAILABLE, errno_message("sending hello to " + path));
  }
  if (!wait_readable(fd, kHandshakeTimeoutMs)) {
    return fail(VMCI_ERROR_UNAVAILABLE, "no answer from hostpeer at " + path);
  }
  proto::FrameHeader header;
  std::vector<uint8_t> body;
  std::vector<int> fds;
  std::string read_error;
  if (!read_frame(fd, &header, &body, &fds, &read_error)) {
    return fail(VMCI_ERROR_UNAVAILABLE, read_error + " (" + path + ")");
  }
  if (header.type == static_cast<uint16_t>(proto::FrameType::kGoodbye)) {
    const auto bye = proto::decode_body<proto::GoodbyeBody>(body);
    return fail(bye.status < 0 ? bye.status : VMCI_ERROR_UNAVAILABLE,
                "hostpeer refused: " + proto::decode_trailer(body, sizeof bye));
  }
  if (header.type != static_cast<uint16_t>(proto::FrameType::kWelcome)) {
    close_all(&fds);
    return fail(VMCI_ERROR_UNAVAILABLE, "hostpeer answered hello with an unexpected frame");
  }
  const auto welcome = proto::decode_body<proto::WelcomeBody>(body);
  if (welcome.status < 0) {
    close_all(&fds);
    return fail(welcome.status, "hostpeer refused: " + proto::decode_trailer(body, sizeof welcome));
  }
  // The welcome brings the connection's doorbell notify memory.
  std::string map_error = "no doorbell notify memory came with the welcome";
  std::shared_ptr<proto::SharedMemory> notify;
  if (fds.size() == 1) notify = proto::SharedMemory::map_fd(fds[0], proto::kNotifyMemorySize, &map_error);
  close_all(&fds);
  if (!notify) return fail(VMCI_ERROR_UNAVAILABLE, "hostpeer's welcome: " + map_error);
  *status = VMCI_SUCCESS;
  // Counted deliveries came with 2.5.
  const bool counts = (features & proto::kFeatureCountedDeliveries) != 0 && welcome.minor >= 5;
  return std::unique_ptr<Connection>(new Connection(fd, welcome.context_id, welcome.minor, counts,
                                                    std::move(notify), std::move(sink)));
}

Connection::Connection(int fd, vmci_id context_id, uint16_t hostpeer_minor, bool counts_deliveries,
                       std::shared_ptr<proto::SharedMemory> notify, Sink sink)
    : fd_(fd),
      context_id_(context_id),
      hostpeer_minor_(hostpeer_minor),
      counts_deliveries_(counts_deliveries),
      notify_(std::move(notify)),
      sink_(std::move(sink)) {
  reader_ = std::thread([this] { read_loop(); });
}

Connection::~Connection() {
  abort();
  reader_.join();
  ::close(fd_);
}

bool Connection::alive() const {
  std::lock_guard lock(mutex_);
  return !closed_;
}

std::string Connection::close_reason() const {
  std::lock_guard lock(mutex_);
  return close_reason_;
}

void Connection::abort() { ::shutdown(fd_, SHUT_RDWR); }

bool Connection::send_frame(const std::vector<uint8_t>& frame, std::span<const int> fds) {
  std::lock_guard lock(write_mutex_);
  if (fds.empty()) return write_all(fd_, frame.data(), frame.size());
  ssize_t sent;
  do {
    sent = proto::send_with_descriptors(fd_, frame, fds, 0);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return false;
  return write_all(fd_, frame.data() + sent, frame.size() - static_cast<size_t>(sent));
}

Connection::Reply Connection::request(proto::FrameType type, std::span<const uint8_t> body,
                                      ResultHook hook, std::span<const int> fds,
                                      const std::function<void()>& while_waiting) {
  Pending pending;
  pending.hook = std::move(hook);
  uint32_t id;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return std::move(pending.reply);
    id = next_request_id_++;
    pending_[id] = &pending;
  }
  if (!send_frame(proto::encode_frame(type, id, body, static_cast<uint16_t>(fds.size())), fds)) {
    abort();
  }
  if (while_waiting) while_waiting();
  std::unique_lock lock(mutex_);
  result_ready_.wait(lock, [&] { return pending.done; });
  return std::move(pending.reply);
}

void Connection::acknowledge(uint32_t delivery_id) {
  if (counts_deliveries_) {
    proto::publish_deliveries_reached(notify_memory(), ++deliveries_reached_);
    return;
  }
  const proto::DeliveredBody body{};
  if (!send_frame(proto::encode_frame(proto::FrameType::kDelivered, delivery_id, body))) {
    abort();
  }
}

void Connection::read_loop() {
  proto::FrameHeader header;
  std::vector<uint8_t> body;
  std::vector<int> fds;
  std::string reason;
  while (read_frame(fd_, &header, &body, &fds, &reason)) {
    if (header.type != static_cast<uint16_t>(proto::FrameType::kResult) &&
        header.type != static_cast<uint16_t>(proto::FrameType::kRingGrant) &&
        header.type != static_cast<uint16_t>(proto::FrameType::kQueuePairMemory)) {
      close_all(&fds);
    }
    switch (static_cast<proto::FrameType>(header.type)) {
      case proto::FrameType::kResult: {
        const auto result = proto::decode_body<proto::ResultBody>(body);
        std::lock_guard lock(mutex_);
        auto it = pending_.find(header.request_id);
        if (it == pending_.end()) {  // not ours: ignore
          close_all(&fds);
          break;
        }
        if (it->second->hook) it->second->hook(result);
        it->second->reply = Reply{result.result, result.handle, std::move(fds)};
        it->second->reply.extra.assign(body.begin() + sizeof result, body.end());
        fds = {};
        it->second->done = true;
        pending_.erase(it);
        result_ready_.notify_all();
        break;
      }
      case proto::FrameType::kDeliver:
        if (proto::check_datagram(body) != VMCI_SUCCESS) {
          reason = "hostpeer delivered a malformed datagram";
          mark_closed(reason);
          return;
        }
        sink_.deliver(header.request_id, std::move(body));
        body = {};
        break;
      case proto::FrameType::kRingGrant: {
        const auto grant = proto::decode_body<proto::RingGrantBody>(body);
        std::shared_ptr<proto::RingChannel> channel;
        if (!fds.empty()) {
          std::string error;
          channel = proto::map_ring_channel(fds[0], &error);
          close_all(&fds);
          if (!channel && static_cast<proto::RingSide>(grant.side) == proto::RingSide::kRinger) {
            break;  // this endpoint's rings keep going through hostpeer: slower, as correct
          }
          if (!channel) {  // rings for this endpoint would be lost
            reason = "hostpeer's ring channel " + std::to_string(grant.channel_id) + ": " + error;
            mark_closed(reason);
            return;
          }
        }
        if (sink_.ring_grant) sink_.ring_grant(grant, std::move(channel));
        break;
      }
      case proto::FrameType::kQueuePairMemory: {
        auto memory = std::make_shared<QueuePairMemoryFrame>();
        memory->fds = std::exchange(fds, {});
        proto::QueuePairMemoryBody fixed{};
        std::string error;
        if (!proto::decode_queue_pair_memory(body, &fixed, &memory->extents, &error)) {
          reason = "hostpeer sent a bad " + error;
          mark_closed(reason);
          return;
        }
        memory->handle = fixed.handle;
        if (sink_.queue_pair_memory) sink_.queue_pair_memory(std::move(memory));
        break;
      }
      case proto::FrameType::kRingChannelClosed:
        if (sink_.ring_channel_closed) {
          sink_.ring_channel_closed(proto::decode_body<proto::RingChannelClosedBody>(body));
        }
        break;
      case proto::FrameType::kGoodbye: {
        const auto bye = proto::decode_body<proto::GoodbyeBody>(body);
        reason = "hostpeer closed the connection: " + proto::decode_trailer(body, sizeof bye);
        mark_closed(reason);
        return;
      }
      default:  // kWelcome again: a protocol error by hostpeer
        reason = "unexpected " +
                 std::string(proto::frame_type_name(static_cast<proto::FrameType>(header.type))) +
                 " frame from hostpeer";
        mark_closed(reason);
        return;
    }
  }
  close_all(&fds);
  mark_closed(reason);
}

void Connection::mark_closed(const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    close_reason_ = reason;
    for (auto& [id, pending] : pending_) pending->done = true;  // result stays UNAVAILABLE
    pending_.clear();
    result_ready_.notify_all();
  }
  ::shutdown(fd_, SHUT_RDWR);
  sink_.closed(reason);
}

}  // namespace vmci::guest::internal
