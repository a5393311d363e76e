#include "vmci/vsock/datagram_socket.h"

#include <cerrno>
#include <cstring>

#include "vmci/proto/datagram.h"
#include "vmci/vmci_defs.h"
#include "vmci/vsock/errors.h"

namespace vmci::vsock {

namespace {

// The only hypervisor port a datagram may go to (VMCI_UNITY_PBRPC_REGISTER).
constexpr uint32_t kHypervisorDatagramPort = 14;

}  // namespace

DatagramSocket::DatagramSocket(Endpoint& endpoint, size_t receive_bytes,
                               std::shared_ptr<Capture> capture)
    : endpoint_(endpoint), receive_bytes_(receive_bytes), capture_(std::move(capture)) {}

std::unique_ptr<DatagramSocket> DatagramSocket::bind(Endpoint& endpoint, Address local,
                                                     std::error_code& ec, size_t receive_bytes,
                                                     std::shared_ptr<Capture> capture) {
  const vmci_id own = endpoint.get_context_id();
  if (local.cid != kCidAny && local.cid != own) {
    ec = make_error(EADDRNOTAVAIL);
    return nullptr;
  }
  std::unique_ptr<DatagramSocket> s(new DatagramSocket(endpoint, receive_bytes, std::move(capture)));
  DatagramSocket* self = s.get();
  const uint32_t flags = local.cid == kCidAny ? VMCI_FLAG_ANYCID_DG_HND : 0;
  const int status = endpoint.datagram_create_handle(
      local.port == kPortAny ? VMCI_INVALID_ID : local.port, flags, 0,
      [self](vmci_datagram* dg) { return self->deliver(dg); }, &s->handle_);
  if (status < VMCI_SUCCESS) {
    ec = make_error(errno_of_vmci(status));
    return nullptr;
  }
  ec.clear();
  return s;
}

DatagramSocket::~DatagramSocket() { endpoint_.datagram_destroy_handle(handle_); }

Address DatagramSocket::local_address() const {
  return Address{handle_.context == VMCI_INVALID_ID ? kCidAny : handle_.context, handle_.resource};
}

int DatagramSocket::deliver(const vmci_datagram* dg) {
  const auto* payload = reinterpret_cast<const uint8_t*>(dg) + sizeof *dg;
  std::lock_guard lock(mutex_);
  if (queued_bytes_ + dg->payload_size > receive_bytes_) {
    ++dropped_;
    return VMCI_SUCCESS;
  }
  queue_.push_back(Received{Address{dg->src.context, dg->src.resource},
                            std::vector<uint8_t>(payload, payload + dg->payload_size)});
  queued_bytes_ += dg->payload_size;
  arrived_.notify_all();
  return VMCI_SUCCESS;
}

size_t DatagramSocket::send_to(const void* buf, size_t size, Address to, std::error_code& ec) {
  if (size > kMaxDatagramPayload) {
    ec = make_error(EMSGSIZE);
    return 0;
  }
  if (to.port == kPortAny ||
      (to.cid == VMCI_HYPERVISOR_CONTEXT_ID && to.port != kHypervisorDatagramPort)) {
    ec = make_error(EINVAL);
    return 0;
  }
  if (to.cid == kCidAny) to.cid = endpoint_.get_context_id();
  const auto* bytes = static_cast<const uint8_t*>(buf);
  const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(to.cid, to.port), handle_,
                                       std::span<const uint8_t>(bytes, size));
  const int result = endpoint_.datagram_send(reinterpret_cast<const vmci_datagram*>(dg.data()));
  if (result < VMCI_SUCCESS) {
    ec = make_error(errno_of_vmci(result));
    return 0;
  }
  if (capture_) {
    capture_->payload(endpoint_.get_context_id(), handle_.resource, to.cid, to.port,
                      std::span<const uint8_t>(bytes, size));
  }
  ec.clear();
  return size;
}

void DatagramSocket::connect(Address peer) {
  std::lock_guard lock(mutex_);
  peer_ = peer;
}

size_t DatagramSocket::send(const void* buf, size_t size, std::error_code& ec) {
  Address peer;
  {
    std::lock_guard lock(mutex_);
    peer = peer_;
  }
  if (peer.cid == kCidAny && peer.port == kPortAny) {
    ec = make_error(EINVAL);
    return 0;
  }
  return send_to(buf, size, peer, ec);
}

size_t DatagramSocket::receive_from(void* buf, size_t size, Address* from, Timeout timeout,
                                    std::error_code& ec, bool* truncated, bool peek) {
  std::unique_lock lock(mutex_);
  auto some = [&] { return !queue_.empty() || closed_; };
  if (!timeout) {
    arrived_.wait(lock, some);
  } else if (!arrived_.wait_for(lock, *timeout, some)) {
    ec = make_error(EAGAIN);
    return 0;
  }
  if (queue_.empty()) {
    ec = make_error(EBADF);  // closed
    return 0;
  }
  Received& next = queue_.front();
  const size_t n = std::min(size, next.payload.size());
  if (n > 0) std::memcpy(buf, next.payload.data(), n);
  if (from != nullptr) *from = next.from;
  if (truncated != nullptr) *truncated = next.payload.size() > size;
  if (!peek) {
    if (capture_) {
      capture_->payload(next.from.cid, next.from.port, endpoint_.get_context_id(),
                        handle_.resource, next.payload);
    }
    queued_bytes_ -= next.payload.size();
    queue_.pop_front();
  }
  ec.clear();
  return n;
}

void DatagramSocket::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  arrived_.notify_all();
}

size_t DatagramSocket::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

size_t DatagramSocket::next_size() const {
  std::lock_guard lock(mutex_);
  return queue_.empty() ? 0 : queue_.front().payload.size();
}

uint64_t DatagramSocket::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

}  // namespace vmci::vsock
