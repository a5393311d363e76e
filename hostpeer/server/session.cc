#include "server/session.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "vmci/proto/descriptor_passing.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"

namespace vmci::host {

namespace asio = boost::asio;

bool PeerPolicy::may_connect(uid_t uid) const {
  return uid == own_uid ||
         std::find(guest_uids.begin(), guest_uids.end(), uid) != guest_uids.end() ||
         may_be_host(uid);
}

bool PeerPolicy::may_be_host(uid_t uid) const {
  return uid == own_uid || std::find(host_uids.begin(), host_uids.end(), uid) != host_uids.end();
}

std::vector<uid_t> PeerPolicy::other_users() const {
  std::vector<uid_t> users;
  for (const auto* list : {&guest_uids, &host_uids}) {
    for (uid_t uid : *list) {
      if (uid != own_uid && std::find(users.begin(), users.end(), uid) == users.end()) {
        users.push_back(uid);
      }
    }
  }
  return users;
}

namespace {

void close_all(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

}  // namespace

Session::Session(Socket socket, LockedCore& core, const PeerPolicy& policy,
                 DescriptorBudget& budget, std::chrono::milliseconds hello_deadline,
                 std::shared_ptr<spdlog::logger> log)
    : socket_(std::move(socket)),
      core_(core),
      policy_(policy),
      budget_(budget),
      hello_deadline_(hello_deadline),
      log_(std::move(log)),
      deadline_(socket_.get_executor()) {}

Session::~Session() {
  for (Outgoing& early : before_result_) close_all(early.fds);
  close_all(received_fds_);
}

std::string Session::name() const {
  std::string who = "peer pid " + std::to_string(pid_) + " uid " + std::to_string(uid_);
  if (!admitted_) return who;
  return who +
         (role_ == proto::Role::kHost ? " (host)" : " (context " + std::to_string(cid_) + ")");
}

void Session::start() {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    log_->warn("cannot read peer credentials; connection closed");
    close("no peer credentials");
    return;
  }
  uid_ = cred.uid;
  pid_ = cred.pid;
  // A user that may not connect is refused in answer to its hello, so the
  // refusal reaches it whatever it does first.
  denied_ = !policy_.may_connect(uid_);
  arm_deadline(hello_deadline_);
  read_header();
}

void Session::arm_deadline(std::chrono::milliseconds after) {
  deadline_armed_ = true;
  deadline_.expires_after(after);
  deadline_.async_wait([self = shared_from_this(), after](const boost::system::error_code& ec) {
    if (ec) return;  // dropped, or the session went
    self->deadline_armed_ = false;
    if (self->closing_) return;
    if (!self->admitted_ && !self->close_when_written_) {
      self->cut_off("no hello within " + std::to_string(after.count()) + " ms");
    } else if (self->close_when_written_) {
      self->cut_off("its goodbye was not read within " + std::to_string(after.count()) + " ms");
    }
  });
}

// Asio programs its timer descriptor when a timer becomes the earliest and
// when one falls due, not when one is cancelled: a deadline only cancelled
// would still wake the I/O thread when it was due, however idle hostpeer
// is by then (10 s after the last connection's hello). A wait that is due
// at once moves that wake-up here, where the thread is awake anyway; the
// descriptor is then programmed for the next timer, or, with none, for
// the reactor's own check five minutes on.
void Session::drop_deadline() {
  if (!deadline_armed_) return;
  deadline_armed_ = false;
  deadline_.expires_at(std::chrono::steady_clock::now());  // cancels the wait
  deadline_.async_wait([](const boost::system::error_code&) {});
}

void Session::read_header() {
  if (closing_ || close_when_written_) return;
  header_read_ = 0;
  close_all(received_fds_);
  read_header_part();
}

// Asio cannot receive ancillary data: the header is read with recvmsg once
// the socket is readable. Descriptors a peer sends with any other byte are
// closed by the kernel (the body is read without room for them).
void Session::read_header_part() {
  socket_.async_wait(Socket::wait_read, [self = shared_from_this()](
                                            const boost::system::error_code& ec) {
    if (self->closing_) return;
    if (ec) {
      self->close(ec.message());
      return;
    }
    auto* at = reinterpret_cast<uint8_t*>(&self->header_) + self->header_read_;
    iovec iov{at, sizeof self->header_ - self->header_read_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * proto::kMaxFrameDescriptors)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got =
        ::recvmsg(self->socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      self->read_header_part();
      return;
    }
    if (got <= 0) {
      self->close(got == 0 ? "connection closed" : std::string("read failed: ") + std::strerror(errno));
      return;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        self->received_fds_.push_back(fd);
      }
    }
    self->header_read_ += static_cast<size_t>(got);
    if ((msg.msg_flags & MSG_CTRUNC) || self->received_fds_.size() > proto::kMaxFrameDescriptors) {
      const std::string why = "more than " + std::to_string(proto::kMaxFrameDescriptors) +
                              " descriptors sent with one frame";
      self->log_->warn("{}: {}; connection closed", self->name(), why);
      self->goodbye(VMCI_ERROR_INVALID_ARGS, why);
      return;
    }
    if (self->header_read_ < sizeof self->header_) {
      self->read_header_part();
      return;
    }
    auto check = proto::check_frame_header(self->header_, proto::Direction::kToHostpeer);
    if (check.ok && self->received_fds_.size() != self->header_.flags &&
        self->header_.type == static_cast<uint16_t>(proto::FrameType::kGuestMemory)) {
      check = {false, "frame guest-memory announces " + std::to_string(self->header_.flags) +
                          " descriptors and came with " +
                          std::to_string(self->received_fds_.size())};
    } else if (check.ok && !self->received_fds_.empty() &&
               self->header_.type != static_cast<uint16_t>(proto::FrameType::kGuestMemory)) {
      check = {false, "descriptors sent with a frame that takes none"};
    }
    if (!check.ok) {
      self->log_->warn("{}: {}; connection closed", self->name(), check.error);
      self->goodbye(VMCI_ERROR_INVALID_ARGS, check.error);
      return;
    }
    self->read_body();
  });
}

void Session::read_body() {
  body_.resize(header_.body_size);
  asio::async_read(socket_, asio::buffer(body_),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                     if (ec) {
                       self->close("connection closed inside a frame");
                       return;
                     }
                     self->handle_frame();
                     self->read_header();
                   });
}

void Session::handle_frame() {
  const auto type = static_cast<proto::FrameType>(header_.type);
  if (!admitted_) {
    if (type != proto::FrameType::kHello) {
      log_->warn("{}: first frame is {}, not hello; connection closed", name(),
                 proto::frame_type_name(type));
      goodbye(VMCI_ERROR_INVALID_ARGS, "the first frame must be hello");
      return;
    }
    handle_hello();
    return;
  }
  handle_request();
}

void Session::handle_request() {
  const uint32_t id = header_.request_id;
  switch (static_cast<proto::FrameType>(header_.type)) {
    case proto::FrameType::kDatagram: {
      std::shared_ptr<const QueuePairMemory> memory;
      const int64_t value =
          core_.with([&](Hypervisor& core) { return core.send(peer_, body_, &memory); });
      result(id, value, VMCI_INVALID_HANDLE, memory.get());
      break;
    }
    case proto::FrameType::kHandleCreate: {
      const auto req = proto::decode_body<proto::HandleCreateBody>(body_);
      const HandleResult r = core_.with([&](Hypervisor& core) {
        return core.create_host_handle(peer_, req.resource, req.flags, req.priv_flags);
      });
      result(id, r.status, r.handle);
      break;
    }
    case proto::FrameType::kHandleDestroy: {
      const auto req = proto::decode_body<proto::HandleDestroyBody>(body_);
      const HandleResult r =
          core_.with([&](Hypervisor& core) { return core.destroy_host_handle(peer_, req.handle); });
      result(id, r.status, r.handle);
      break;
    }
    case proto::FrameType::kQueuePairAlloc: {
      const auto req = proto::decode_body<proto::QueuePairAllocBody>(body_);
      if (role_ != proto::Role::kHost) {  // guests use the hypercall
        result(id, VMCI_ERROR_NO_ACCESS);
        break;
      }
      const QueuePairReply r = core_.with([&](Hypervisor& core) {
        return core.qpair_alloc(peer_, QpAllocRequest{req.handle, req.peer, req.flags,
                                                      req.priv_flags, req.produce_size,
                                                      req.consume_size});
      });
      result(id, r.status, r.handle, r.memory.get());
      break;
    }
    case proto::FrameType::kQueuePairDetach: {
      const auto req = proto::decode_body<proto::QueuePairDetachBody>(body_);
      const int status =
          role_ != proto::Role::kHost
              ? VMCI_ERROR_NO_ACCESS
              : core_.with([&](Hypervisor& core) { return core.qpair_detach(peer_, req.handle); });
      result(id, status);
      break;
    }
    case proto::FrameType::kDoorbellCreate: {
      const auto req = proto::decode_body<proto::DoorbellCreateBody>(body_);
      const HandleResult r = core_.with([&](Hypervisor& core) {
        return core.create_host_doorbell(peer_, req.resource, req.priv_flags, req.notify_index);
      });
      result(id, r.status, r.handle);
      break;
    }
    case proto::FrameType::kDoorbellDestroy: {
      const auto req = proto::decode_body<proto::DoorbellDestroyBody>(body_);
      result(id, core_.with([&](Hypervisor& core) {
               return core.destroy_host_doorbell(peer_, req.handle);
             }));
      break;
    }
    case proto::FrameType::kDoorbellNotify: {
      const auto req = proto::decode_body<proto::DoorbellNotifyBody>(body_);
      result(id, core_.with([&](Hypervisor& core) {
               return core.notify_doorbell(peer_, req.handle, req.priv_flags);
             }));
      break;
    }
    case proto::FrameType::kDelivered:
      core_.with([&](Hypervisor& core) { core.delivered(peer_, id); });
      break;
    case proto::FrameType::kStats:
      stats_result(id);
      break;
    case proto::FrameType::kIntrospect:
      introspection_result(id);
      break;
    case proto::FrameType::kGuestMemory:
      handle_guest_memory(id);
      break;
    case proto::FrameType::kSync:  // frames are handled in order: all before it are done
      result(id, VMCI_SUCCESS);
      break;
    default:  // kHello again
      log_->warn("{}: second hello; connection closed", name());
      goodbye(VMCI_ERROR_INVALID_ARGS, "hello may only be the first frame");
      break;
  }
}

void Session::handle_guest_memory(uint32_t request_id) {
  std::vector<int> fds = std::exchange(received_fds_, {});
  proto::GuestMemoryBody fixed{};
  std::vector<proto::GuestMemoryRegion> regions;
  std::string error;
  if (!proto::decode_guest_memory(body_, &fixed, &regions, &error)) {
    close_all(fds);
    log_->warn("{}: guest memory map refused: {}", name(), error);
    result(request_id, VMCI_ERROR_INVALID_ARGS);
    return;
  }
  result(request_id, core_.with([&](Hypervisor& core) {
           return core.set_guest_memory(peer_, fixed.flags, regions, std::move(fds));
         }));
}

bool Session::queue_pair_memory_frame(vmci_handle handle, const QueuePairMemory& memory,
                                      Outgoing* out) {
  std::vector<const OwnedFd*> files;  // distinct, in order of first use
  std::vector<proto::QueuePairExtent> table;
  for (const QueueExtent& e : memory.extents()) {
    auto it = std::find(files.begin(), files.end(), e.file.get());
    if (it == files.end()) it = files.insert(files.end(), e.file.get());
    table.push_back(proto::QueuePairExtent{e.offset, static_cast<uint32_t>(e.size / 4096),
                                           static_cast<uint32_t>(it - files.begin())});
  }
  if (files.size() > proto::kMaxFrameDescriptors) {
    log_->error("{}: queue pair {} spans {} files", name(), proto::to_string(handle),
                files.size());
    return false;
  }
  std::vector<int> fds;
  for (const OwnedFd* file : files) {
    const int fd = ::fcntl(file->get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      close_all(fds);
      return false;
    }
    fds.push_back(fd);
  }
  const auto count = static_cast<uint16_t>(fds.size());
  out->bytes = proto::encode_frame(proto::FrameType::kQueuePairMemory, 0,
                                   proto::encode_queue_pair_memory(handle, table), count);
  out->fds = std::move(fds);
  return true;
}

void Session::queue_pair_memory(vmci_handle handle,
                                std::shared_ptr<const QueuePairMemory> memory) {
  Outgoing frame;
  if (!queue_pair_memory_frame(handle, *memory, &frame)) {
    // The host endpoint would wait for memory that never comes.
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->cut_off("cannot pass a queue pair's guest memory on");
    });
    return;
  }
  post_frame(std::move(frame.bytes), std::move(frame.fds));
}

void Session::handle_hello() {
  const auto hello = proto::decode_body<proto::HelloBody>(body_);
  auto refuse = [&](int status, const std::string& reason) {
    log_->warn("{}: refused: {}", name(), reason);
    const proto::WelcomeBody refusal{proto::kProtocolMajor, proto::kProtocolMinor, status,
                                     VMCI_INVALID_ID, 0};
    queue_frame(
        proto::encode_frame(proto::FrameType::kWelcome, header_.request_id, refusal, reason));
    close_once_written("refused");
  };
  const std::string user = std::to_string(uid_);
  if (denied_) {
    refuse(VMCI_ERROR_NO_ACCESS, "user " + user +
                                     " may not use this hostpeer: start it with "
                                     "--allow-guest-uid " +
                                     user + " (as a guest) or --allow-host-uid " + user +
                                     " (as a guest or the host)");
    return;
  }
  if (hello.major != proto::kProtocolMajor) {
    refuse(VMCI_ERROR_INVALID_ARGS,
           "protocol version " + std::to_string(hello.major) + "." + std::to_string(hello.minor) +
               " is not supported by this hostpeer (version " +
               std::to_string(proto::kProtocolMajor) + "." + std::to_string(proto::kProtocolMinor) +
               "; the major versions must match)");
    return;
  }
  if (hello.role != static_cast<uint8_t>(proto::Role::kGuest) &&
      hello.role != static_cast<uint8_t>(proto::Role::kHost)) {
    refuse(VMCI_ERROR_INVALID_ARGS, "unknown role " + std::to_string(hello.role));
    return;
  }
  if (hello.role == static_cast<uint8_t>(proto::Role::kHost) && !policy_.may_be_host(uid_)) {
    refuse(VMCI_ERROR_NO_ACCESS, "user " + user +
                                     " may connect only as a guest: the host role (context 2) "
                                     "needs hostpeer started with --allow-host-uid " +
                                     user);
    return;
  }
  std::string error;
  notify_ = NotifyMemoryFile::create(&error);
  if (!notify_) {
    log_->error("{}: no notify memory: {}", name(), error);
    refuse(VMCI_ERROR_NO_RESOURCES, "hostpeer could not make the doorbell notify memory");
    return;
  }
  PeerHello request;
  request.role = static_cast<proto::Role>(hello.role);
  request.requested_cid = hello.requested_cid;
  request.priv_flags = hello.priv_flags;
  request.trusted_for_host = policy_.may_be_host(uid_);
  request.rings_through_channels = true;
  request.allows_ring_channels = (hello.features & proto::kFeatureNoRingChannels) == 0;
  request.supplies_guest_memory = (hello.features & proto::kFeatureGuestMemory) != 0;
  request.takes_host_lanes = (hello.features & proto::kFeatureHostLanes) != 0;
  request.counts_deliveries = (hello.features & proto::kFeatureCountedDeliveries) != 0;
  // kQueuePairMemory came with 2.1.
  request.takes_extents = hello.minor >= 1;
  request.pid = pid_;
  request.uid = uid_;
  const Admission admission =
      core_.with([&](Hypervisor& core) { return core.admit(request, this); });
  if (admission.status < VMCI_SUCCESS) {
    refuse(admission.status, admission.reason);
    return;
  }
  admitted_ = true;
  drop_deadline();
  peer_ = admission.peer;
  cid_ = admission.cid;
  role_ = request.role;
  peer_minor_ = hello.minor;
  const proto::WelcomeBody welcome{proto::kProtocolMajor, proto::kProtocolMinor, VMCI_SUCCESS, cid_,
                                   0};
  const int notify_fd = ::fcntl(notify_->fd(), F_DUPFD_CLOEXEC, 0);
  if (notify_fd < 0) {
    queue_frame(proto::encode_frame(proto::FrameType::kWelcome, header_.request_id, welcome));
    log_->error("{}: cannot pass its notify memory: {}", name(), std::strerror(errno));
    goodbye(VMCI_ERROR_NO_RESOURCES, "hostpeer is out of file descriptors");
    return;
  }
  queue_frame(proto::encode_frame(proto::FrameType::kWelcome, header_.request_id, welcome, {}, 1),
              {notify_fd});
}

void Session::result(uint32_t request_id, int64_t value, vmci_handle handle,
                     const QueuePairMemory* memory) {
  for (Outgoing& early : before_result_) queue_frame(std::move(early.bytes), std::move(early.fds));
  before_result_.clear();
  const proto::ResultBody body{value, handle};
  std::vector<int> fds;
  if (memory != nullptr && value >= VMCI_SUCCESS && memory->guest_pages()) {
    // A guest's memory is its own; a host gets it as extents, first.
    if (role_ == proto::Role::kHost) {
      Outgoing frame;
      const int status_fd = ::fcntl(memory->status_fd(), F_DUPFD_CLOEXEC, 0);
      if (status_fd < 0 || !queue_pair_memory_frame(handle, *memory, &frame)) {
        if (status_fd >= 0) ::close(status_fd);
        log_->error("{}: cannot pass queue pair memory: {}", name(), std::strerror(errno));
        goodbye(VMCI_ERROR_NO_RESOURCES, "hostpeer is out of file descriptors");
        return;
      }
      queue_frame(std::move(frame.bytes), std::move(frame.fds));
      fds.push_back(status_fd);
    }
  } else if (memory != nullptr && value >= VMCI_SUCCESS) {
    fds.push_back(::fcntl(memory->fd(), F_DUPFD_CLOEXEC, 0));
    if (role_ == proto::Role::kHost) {
      fds.push_back(::fcntl(memory->status_fd(), F_DUPFD_CLOEXEC, 0));
    }
    if (std::find(fds.begin(), fds.end(), -1) != fds.end()) {
      // The pair exists but cannot be handed over: the peer cannot go on.
      log_->error("{}: cannot pass queue pair memory: {}", name(), std::strerror(errno));
      for (int fd : fds) {
        if (fd >= 0) ::close(fd);
      }
      goodbye(VMCI_ERROR_NO_RESOURCES, "hostpeer is out of file descriptors");
      return;
    }
  }
  const auto count = static_cast<uint16_t>(fds.size());
  queue_frame(proto::encode_frame(proto::FrameType::kResult, request_id, body, {}, count),
              std::move(fds));
  // Memory for the next alloc, made now that this one's caller has its answer.
  if (memory != nullptr && value >= VMCI_SUCCESS && !memory->guest_pages()) {
    core_.with([](Hypervisor& core) { core.restock_memory(); });
  }
}

void Session::stats_result(uint32_t request_id) {
  if (role_ != proto::Role::kHost) {
    result(request_id, VMCI_ERROR_NO_ACCESS);
    return;
  }
  const Stats s = core_.with([](Hypervisor& core) { return core.stats(); });
  const proto::StatsBody stats{s.guest_contexts,    s.host_connections,
                               s.host_datagram_handles, s.queue_pairs,
                               s.queue_pair_bytes,  s.doorbells,
                               s.ring_channels,     s.ring_grants,
                               s.pending_datagrams, s.pending_datagram_bytes,
                               s.datagrams_routed,  s.events_sent,
                               s.doorbells_rung};
  const proto::ResultBody body{VMCI_SUCCESS, VMCI_INVALID_HANDLE};
  const auto* bytes = reinterpret_cast<const char*>(&stats);
  queue_frame(proto::encode_frame(proto::FrameType::kResult, request_id, body,
                                  std::string_view(bytes, sizeof stats)));
}

void Session::introspection_result(uint32_t request_id) {
  if (role_ != proto::Role::kHost) {
    result(request_id, VMCI_ERROR_NO_ACCESS);
    return;
  }
  const uint64_t offset = proto::decode_body<proto::IntrospectBody>(body_).offset;
  if (peer_minor_ < 4) {  // the whole snapshot in one answer
    const std::string json =
        to_json(core_.with([](Hypervisor& core) { return core.introspect(); }));
    const proto::ResultBody body{VMCI_SUCCESS, VMCI_INVALID_HANDLE};
    if (sizeof body + json.size() > proto::kMaxFrameBody) {
      log_->warn(
          "{}: the introspection snapshot ({} bytes) is larger than a frame, and the peer "
          "(protocol 2.{}) cannot take it in pieces; refused",
          name(), json.size(), peer_minor_);
      result(request_id, VMCI_ERROR_NO_RESOURCES);
      return;
    }
    queue_frame(proto::encode_frame(proto::FrameType::kResult, request_id, body, json));
    return;
  }
  if (offset == 0) {
    introspection_ = to_json(core_.with([](Hypervisor& core) { return core.introspect(); }));
  } else if (offset > introspection_.size()) {
    result(request_id, VMCI_ERROR_INVALID_ARGS);
    return;
  }
  const size_t piece = std::min<size_t>(proto::kMaxIntrospectPiece, introspection_.size() - offset);
  const proto::ResultBody body{static_cast<int64_t>(introspection_.size()), VMCI_INVALID_HANDLE};
  queue_frame(proto::encode_frame(proto::FrameType::kResult, request_id, body,
                                  std::string_view(introspection_).substr(offset, piece)));
  if (offset + piece == introspection_.size()) introspection_ = {};  // answered whole
}

void Session::post_frame(std::vector<uint8_t> frame, std::vector<int> fds) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), f = std::move(frame), d = std::move(fds)]() mutable {
               self->queue_frame(std::move(f), std::move(d));
             });
}

void Session::deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) {
  post_frame(proto::encode_frame(proto::FrameType::kDeliver, delivery_id, datagram));
}

void Session::ring(uint64_t index) { notify_->ring(index); }

uint32_t Session::deliveries_reached() const {
  return proto::deliveries_reached(notify_->memory());
}

void Session::grant(const proto::RingGrantBody& grant, const RingChannelFile& memory, bool first) {
  std::vector<int> fds;
  if (first) {
    const int fd = ::fcntl(memory.fd(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {  // rings keep going through hostpeer: correct, only slower
      log_->warn("{}: ring channel {} not passed on: {}", name(), grant.channel_id,
                 std::strerror(errno));
      return;
    }
    fds.push_back(fd);
  }
  const auto count = static_cast<uint16_t>(fds.size());
  auto frame = proto::encode_frame(proto::FrameType::kRingGrant, 0, grant, {}, count);
  if (static_cast<proto::RingSide>(grant.side) == proto::RingSide::kRinger) {
    // Called while this session's own notify is handled: before its result.
    before_result_.push_back(Outgoing{std::move(frame), std::move(fds)});
  } else {
    post_frame(std::move(frame), std::move(fds));
  }
}

void Session::close_ring_channel(uint32_t channel_id, proto::RingSide side) {
  const proto::RingChannelClosedBody body{channel_id, static_cast<uint8_t>(side), {}};
  post_frame(proto::encode_frame(proto::FrameType::kRingChannelClosed, 0, body));
}

void Session::queue_frame(std::vector<uint8_t> frame, std::vector<int> fds) {
  if (closing_) {
    close_all(fds);
    return;
  }
  if (out_.memory() + frame.size() > kMaxQueuedBytes) {
    close_all(fds);
    cut_off("not reading: " + std::to_string(out_.memory()) + " bytes queued");
    return;
  }
  if (!fds.empty()) {
    const size_t held = out_.descriptors() + fds.size();
    if (!budget_.admit(this, held)) {
      close_all(fds);
      cut_off("not reading: " + std::to_string(held) + " descriptors queued (at most " +
              std::to_string(budget_.bounds().per_peer) + " per peer, " +
              std::to_string(budget_.bounds().total) + " for all)");
      return;
    }
  }
  out_.push(std::move(frame), std::move(fds));
  if (!writing_) write_next();
}

// Writes at once while the socket takes it (no reactor round per frame);
// waits for room only when the socket is full.
void Session::write_next() {
  while (!closing_ && !out_.empty()) {
    const ssize_t sent = send_next();
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      writing_ = true;
      socket_.async_wait(Socket::wait_write,
                         [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (self->closing_) return;
                           if (ec) {
                             self->close("write failed: " + ec.message());
                             return;
                           }
                           self->write_next();
                         });
      return;
    }
    if (sent < 0) {
      close(std::string("write failed: ") + std::strerror(errno));
      return;
    }
    const bool passed_fds = !out_.next_fds().empty();
    // The descriptors went with the first byte: the peer has its own copies.
    out_.consumed(static_cast<size_t>(sent));
    if (passed_fds) budget_.hold(this, out_.descriptors());
  }
  writing_ = false;
  if (close_when_written_ && !closing_) close(close_reason_);
}

// Asio cannot send ancillary data: a frame's descriptors go by sendmsg
// (SCM_RIGHTS) with its first byte; frames without any go the same way.
ssize_t Session::send_next() {
  return proto::send_with_descriptors(socket_.native_handle(), out_.next(), out_.next_fds(),
                                      MSG_DONTWAIT);
}

void Session::close_once_written(const std::string& reason) {
  close_when_written_ = true;
  close_reason_ = reason;
  if (!writing_) {
    close(reason);
    return;
  }
  arm_deadline(kGoodbyeDeadline);
}

void Session::goodbye(int status, const std::string& reason) {
  const proto::GoodbyeBody body{status, 0};
  const std::string text = reason.substr(0, proto::kMaxReasonSize);
  queue_frame(proto::encode_frame(proto::FrameType::kGoodbye, 0, body, text));
  close_once_written(reason);
}

void Session::cut_off(const std::string& reason) {
  if (closing_) return;
  log_->warn("{}: {}; connection cut off", name(), reason);
  close(reason);
}

void Session::close(const std::string& reason) {
  if (closing_) return;
  closing_ = true;
  if (admitted_) {
    core_.with([&](Hypervisor& core) { core.remove(peer_); });
    log_->debug("{}: closed: {}", name(), reason);
  }
  boost::system::error_code ignored;
  drop_deadline();
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  // What the peer has not read goes now, its descriptors with it (a write
  // in flight keeps its bytes until the session goes).
  out_.clear();
  budget_.hold(this, 0);
}

}  // namespace vmci::host
