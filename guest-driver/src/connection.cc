#include "connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include "posix_io.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/socket_path.h"

namespace vmci::guest::internal {
namespace {

constexpr int kHandshakeTimeoutMs = 10000;

// Reads one frame; false with *error on end of file, error or a bad header.
bool read_frame(int fd, proto::FrameHeader* header, std::vector<uint8_t>* body,
                std::string* error) {
  if (!read_exact(fd, header, sizeof *header)) {
    *error = "hostpeer closed the connection";
    return false;
  }
  const auto check = proto::check_frame_header(*header, proto::Direction::kToPeer);
  if (!check.ok) {
    *error = "bad frame from hostpeer: " + check.error;
    return false;
  }
  body->resize(header->body_size);
  if (!read_exact(fd, body->data(), body->size())) {
    *error = "hostpeer closed the connection inside a frame";
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<Connection> Connection::open(const ConnectOptions& options, Sink sink, int* status,
                                             std::string* error) {
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

  proto::HelloBody hello{
      proto::kProtocolMajor, proto::kProtocolMinor, static_cast<uint8_t>(options.role), {},
      options.context_id,    options.priv_flags};
  const auto frame = proto::encode_frame(proto::FrameType::kHello, 0, hello);
  if (!write_all(fd, frame.data(), frame.size())) {
    return fail(VMCI_ERROR_UNAVAILABLE, errno_message("sending hello to " + path));
  }
  if (!wait_readable(fd, kHandshakeTimeoutMs)) {
    return fail(VMCI_ERROR_UNAVAILABLE, "no answer from hostpeer at " + path);
  }
  proto::FrameHeader header;
  std::vector<uint8_t> body;
  std::string read_error;
  if (!read_frame(fd, &header, &body, &read_error)) {
    return fail(VMCI_ERROR_UNAVAILABLE, read_error + " (" + path + ")");
  }
  if (header.type == static_cast<uint16_t>(proto::FrameType::kGoodbye)) {
    const auto bye = proto::decode_body<proto::GoodbyeBody>(body);
    return fail(bye.status < 0 ? bye.status : VMCI_ERROR_UNAVAILABLE,
                "hostpeer refused: " + proto::decode_trailer(body, sizeof bye));
  }
  if (header.type != static_cast<uint16_t>(proto::FrameType::kWelcome)) {
    return fail(VMCI_ERROR_UNAVAILABLE, "hostpeer answered hello with an unexpected frame");
  }
  const auto welcome = proto::decode_body<proto::WelcomeBody>(body);
  if (welcome.status < 0) {
    return fail(welcome.status, "hostpeer refused: " + proto::decode_trailer(body, sizeof welcome));
  }
  *status = VMCI_SUCCESS;
  return std::unique_ptr<Connection>(new Connection(fd, welcome.context_id, std::move(sink)));
}

Connection::Connection(int fd, vmci_id context_id, Sink sink)
    : fd_(fd), context_id_(context_id), sink_(std::move(sink)) {
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

bool Connection::send_frame(const std::vector<uint8_t>& frame) {
  std::lock_guard lock(write_mutex_);
  return write_all(fd_, frame.data(), frame.size());
}

proto::ResultBody Connection::request(proto::FrameType type, std::span<const uint8_t> body,
                                      ResultHook hook) {
  Pending pending;
  pending.hook = std::move(hook);
  uint32_t id;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return pending.result;
    id = next_request_id_++;
    pending_[id] = &pending;
  }
  if (!send_frame(proto::encode_frame(type, id, body))) abort();
  std::unique_lock lock(mutex_);
  result_ready_.wait(lock, [&] { return pending.done; });
  return pending.result;
}

void Connection::acknowledge(uint32_t delivery_id) {
  const proto::DeliveredBody body{};
  if (!send_frame(proto::encode_frame(proto::FrameType::kDelivered, delivery_id, body))) {
    abort();
  }
}

void Connection::read_loop() {
  proto::FrameHeader header;
  std::vector<uint8_t> body;
  std::string reason;
  while (read_frame(fd_, &header, &body, &reason)) {
    switch (static_cast<proto::FrameType>(header.type)) {
      case proto::FrameType::kResult: {
        const auto result = proto::decode_body<proto::ResultBody>(body);
        std::lock_guard lock(mutex_);
        auto it = pending_.find(header.request_id);
        if (it == pending_.end()) break;  // not ours: ignore
        if (it->second->hook) it->second->hook(result);
        it->second->result = result;
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
