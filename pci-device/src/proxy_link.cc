// proxy_link.cc: reading, checking and answering QEMU's proxy messages.
#include "proxy_link.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace vmci::pcidev {
namespace {

template <typename T>
T load(std::span<const uint8_t> body, size_t at) {
  T value;
  std::memcpy(&value, body.data() + at, sizeof(T));
  return value;
}

// The body size and descriptor count each command must have.
struct Shape {
  size_t body;
  size_t min_fds;
  size_t max_fds;
};

bool shape_of(int32_t cmd, Shape* shape) {
  switch (static_cast<MpqemuCommand>(cmd)) {
    case MpqemuCommand::kSyncSysmem: *shape = {kSyncSysmemBodySize, 1, kMpqemuMaxFds}; return true;
    case MpqemuCommand::kRet: *shape = {kRetBodySize, 0, 0}; return true;
    case MpqemuCommand::kPciConfigWrite:
    case MpqemuCommand::kPciConfigRead: *shape = {kConfigBodySize, 0, 0}; return true;
    case MpqemuCommand::kBarWrite:
    case MpqemuCommand::kBarRead: *shape = {kBarBodySize, 0, 0}; return true;
    case MpqemuCommand::kSetIrqfd: *shape = {0, 2, 2}; return true;
    case MpqemuCommand::kDeviceReset: *shape = {0, 0, 0}; return true;
  }
  return false;
}

}  // namespace

const char* command_name(int32_t cmd) {
  switch (static_cast<MpqemuCommand>(cmd)) {
    case MpqemuCommand::kSyncSysmem: return "SYNC_SYSMEM";
    case MpqemuCommand::kRet: return "RET";
    case MpqemuCommand::kPciConfigWrite: return "PCI_CFGWRITE";
    case MpqemuCommand::kPciConfigRead: return "PCI_CFGREAD";
    case MpqemuCommand::kBarWrite: return "BAR_WRITE";
    case MpqemuCommand::kBarRead: return "BAR_READ";
    case MpqemuCommand::kSetIrqfd: return "SET_IRQFD";
    case MpqemuCommand::kDeviceReset: return "DEVICE_RESET";
  }
  return "unknown";
}

bool wants_reply(int32_t cmd) {
  switch (static_cast<MpqemuCommand>(cmd)) {
    case MpqemuCommand::kPciConfigWrite:
    case MpqemuCommand::kPciConfigRead:
    case MpqemuCommand::kBarWrite:
    case MpqemuCommand::kBarRead:
    case MpqemuCommand::kDeviceReset: return true;
    default: return false;
  }
}

LinkStatus check_header(const MpqemuHeader& header, size_t fd_count) {
  Shape shape;
  if (!shape_of(header.cmd, &shape)) {
    return LinkStatus::Malformed("unknown command " + std::to_string(header.cmd));
  }
  if (header.size > kMpqemuMaxBody) {
    return LinkStatus::Malformed(std::string(command_name(header.cmd)) + " with a body of " +
                                 std::to_string(header.size) + " bytes (at most " +
                                 std::to_string(kMpqemuMaxBody) + ")");
  }
  if (fd_count > kMpqemuMaxFds) {
    return LinkStatus::Malformed(std::to_string(fd_count) + " descriptors (at most " +
                                 std::to_string(kMpqemuMaxFds) + ")");
  }
  return LinkStatus::Ok();
}

LinkStatus decode_message(const MpqemuHeader& header, std::span<const uint8_t> body,
                          std::vector<UniqueFd> fds, ProxyMessage* message) {
  Shape shape;
  if (!shape_of(header.cmd, &shape)) {
    return LinkStatus::Malformed("unknown command " + std::to_string(header.cmd));
  }
  const std::string name = command_name(header.cmd);
  if (body.size() != shape.body) {
    return LinkStatus::Rejected(name + " with a body of " + std::to_string(body.size()) +
                                 " bytes (must be " + std::to_string(shape.body) + ")");
  }
  if (fds.size() < shape.min_fds || fds.size() > shape.max_fds) {
    return LinkStatus::Rejected(name + " with " + std::to_string(fds.size()) +
                                 " descriptors (must be " + std::to_string(shape.min_fds) +
                                 (shape.min_fds == shape.max_fds
                                      ? std::string()
                                      : " to " + std::to_string(shape.max_fds)) +
                                 ")");
  }
  switch (static_cast<MpqemuCommand>(header.cmd)) {
    case MpqemuCommand::kSyncSysmem: {
      SyncSysmem sync;
      for (size_t i = 0; i < fds.size(); ++i) {
        sync.regions.push_back(SysmemRegion{load<uint64_t>(body, 8 * i),
                                            load<uint64_t>(body, 64 + 8 * i),
                                            load<int64_t>(body, 128 + 8 * i), std::move(fds[i])});
      }
      *message = std::move(sync);
      break;
    }
    case MpqemuCommand::kRet: *message = UnexpectedRet{load<uint64_t>(body, 0)}; break;
    case MpqemuCommand::kPciConfigWrite:
      *message = ConfigWrite{load<uint32_t>(body, 0), load<uint32_t>(body, 4),
                             static_cast<uint32_t>(load<int32_t>(body, 8))};
      break;
    case MpqemuCommand::kPciConfigRead:
      *message = ConfigRead{load<uint32_t>(body, 0), static_cast<uint32_t>(load<int32_t>(body, 8))};
      break;
    case MpqemuCommand::kBarWrite:
      *message = BarWrite{load<uint64_t>(body, 0), load<uint64_t>(body, 8), load<uint32_t>(body, 16),
                          load<uint8_t>(body, 20) != 0};
      break;
    case MpqemuCommand::kBarRead:
      *message = BarRead{load<uint64_t>(body, 0), load<uint32_t>(body, 16), load<uint8_t>(body, 20) != 0};
      break;
    case MpqemuCommand::kSetIrqfd: *message = SetIrqfd{std::move(fds[0]), std::move(fds[1])}; break;
    case MpqemuCommand::kDeviceReset: *message = DeviceReset{}; break;
  }
  return LinkStatus::Ok();
}

ProxyLink::ProxyLink(UniqueFd socket, std::shared_ptr<spdlog::logger> log)
    : socket_(std::move(socket)), log_(std::move(log)) {}

LinkStatus ProxyLink::read_exact(void* buffer, size_t len, std::vector<UniqueFd>* fds,
                                 bool at_start) {
  auto* bytes = static_cast<uint8_t*>(buffer);
  size_t done = 0;
  while (done < len) {
    iovec iov{bytes + done, len - done};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMpqemuMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LinkStatus::IoError(std::string("recvmsg: ") + std::strerror(errno));
    // Take every descriptor that came, even with a short or final read, so
    // none leaks.
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (fds != nullptr) {
          fds->emplace_back(fd);
        } else {
          UniqueFd dropped(fd);  // descriptors on a body: not the protocol's; closed
        }
      }
    }
    if ((msg.msg_flags & MSG_CTRUNC) != 0) {
      return LinkStatus::Malformed("more descriptors than a message may carry (control data truncated)");
    }
    if (n == 0) {
      if (at_start && done == 0) return LinkStatus::Closed("QEMU closed the link");
      return LinkStatus::IoError("QEMU closed the link in the middle of a message");
    }
    done += static_cast<size_t>(n);
  }
  return LinkStatus::Ok();
}

LinkStatus ProxyLink::read_message(ProxyMessage* message) {
  MpqemuHeader header;
  std::vector<UniqueFd> fds;
  LinkStatus status = read_exact(&header, sizeof(header), &fds, /*at_start=*/true);
  if (!status.ok()) return status;
  status = check_header(header, fds.size());
  if (!status.ok()) return status;
  uint8_t body[kMpqemuMaxBody];
  status = read_exact(body, header.size, &fds, /*at_start=*/false);
  if (!status.ok()) return status;
  status = decode_message(header, std::span<const uint8_t>(body, header.size), std::move(fds),
                          message);
  if (!status.ok() && wants_reply(header.cmd)) {
    LinkStatus sent = send_ret(kRetError);
    if (!sent.ok()) return sent;
  }
  return status;
}

LinkStatus ProxyLink::send_ret(uint64_t value) {
  struct {
    MpqemuHeader header;
    uint64_t value;
  } ret{{static_cast<int32_t>(MpqemuCommand::kRet), 0, kRetBodySize}, value};
  static_assert(sizeof(ret) == 24);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&ret);
  size_t done = 0;
  while (done < sizeof(ret)) {
    ssize_t n = ::send(socket_.get(), bytes + done, sizeof(ret) - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return LinkStatus::IoError(std::string("send RET: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return LinkStatus::Ok();
}

LinkStatus ProxyLink::dispatch(ProxyMessage&& message, ProxyMessageHandler& handler) {
  struct Visitor {
    ProxyLink& link;
    ProxyMessageHandler& handler;
    LinkStatus operator()(SyncSysmem& m) {
      handler.sync_sysmem(std::move(m));
      return LinkStatus::Ok();
    }
    LinkStatus operator()(ConfigWrite& m) {
      handler.config_write(m);
      return link.send_ret(0);
    }
    LinkStatus operator()(ConfigRead& m) { return link.send_ret(handler.config_read(m)); }
    LinkStatus operator()(BarWrite& m) {
      handler.bar_write(m);
      return link.send_ret(0);
    }
    LinkStatus operator()(BarRead& m) { return link.send_ret(handler.bar_read(m)); }
    LinkStatus operator()(SetIrqfd& m) {
      handler.set_irqfd(std::move(m));
      return LinkStatus::Ok();
    }
    LinkStatus operator()(DeviceReset&) {
      handler.device_reset();
      return link.send_ret(0);
    }
    LinkStatus operator()(UnexpectedRet& m) {
      link.log_->error("proxy link: QEMU sent RET ({:#x}) when no request was outstanding; dropped",
                       m.value);
      return LinkStatus::Ok();
    }
  };
  return std::visit(Visitor{*this, handler}, message);
}

LinkStatus ProxyLink::serve(ProxyMessageHandler& handler) {
  for (;;) {
    ProxyMessage message;
    LinkStatus status = read_message(&message);
    if (status.kind == LinkStatus::Kind::kRejected) {
      log_->error("proxy link: dropped a malformed message: {}", status.message);
      continue;
    }
    if (status.ok()) status = dispatch(std::move(message), handler);
    if (!status.ok()) {
      if (status.kind != LinkStatus::Kind::kClosed) {
        log_->error("proxy link: ending: {}", status.message);
      }
      return status;
    }
  }
}

void ProxyLink::shut_down() { ::shutdown(socket_.get(), SHUT_RDWR); }

}  // namespace vmci::pcidev
