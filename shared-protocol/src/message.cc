#include "vmci/message.h"

#include <cstring>

namespace vmci {

namespace {

template <typename T>
T load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

bool is_context_event(uint32_t type) {
  return type == VMCI_EVENT_CTX_ID_UPDATE || type == VMCI_EVENT_CTX_REMOVED;
}

bool is_queue_pair_event(uint32_t type) {
  return type == VMCI_EVENT_QP_PEER_ATTACH || type == VMCI_EVENT_QP_PEER_DETACH;
}

// The bytes that follow an event's vmci_event_data.
const uint8_t* event_payload(const vmci_event_data* event) {
  return reinterpret_cast<const uint8_t*>(event) + sizeof *event;
}

}  // namespace

PayloadWriter& PayloadWriter::u8(uint8_t v) {
  bytes_.push_back(v);
  return *this;
}

PayloadWriter& PayloadWriter::u16(uint16_t v) {
  for (int i = 0; i < 2; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}

PayloadWriter& PayloadWriter::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}

PayloadWriter& PayloadWriter::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return *this;
}

PayloadWriter& PayloadWriter::handle(vmci_handle h) { return u32(h.context).u32(h.resource); }

PayloadWriter& PayloadWriter::bytes(std::span<const uint8_t> b) {
  bytes_.insert(bytes_.end(), b.begin(), b.end());
  return *this;
}

PayloadWriter& PayloadWriter::text(std::string_view s) {
  bytes_.insert(bytes_.end(), s.begin(), s.end());
  return *this;
}

std::optional<uint64_t> PayloadReader::little_endian(size_t n) {
  if (remaining() < n) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{payload_[offset_ + i]} << (8 * i);
  offset_ += n;
  return v;
}

std::optional<uint8_t> PayloadReader::u8() {
  auto v = little_endian(1);
  return v ? std::optional<uint8_t>(static_cast<uint8_t>(*v)) : std::nullopt;
}

std::optional<uint16_t> PayloadReader::u16() {
  auto v = little_endian(2);
  return v ? std::optional<uint16_t>(static_cast<uint16_t>(*v)) : std::nullopt;
}

std::optional<uint32_t> PayloadReader::u32() {
  auto v = little_endian(4);
  return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
}

std::optional<uint64_t> PayloadReader::u64() { return little_endian(8); }

std::optional<vmci_handle> PayloadReader::handle() {
  if (remaining() < 8) return std::nullopt;
  const uint32_t context = *u32();
  const uint32_t resource = *u32();
  return vmci_handle{context, resource};
}

std::optional<std::span<const uint8_t>> PayloadReader::bytes(size_t n) {
  if (remaining() < n) return std::nullopt;
  auto b = payload_.subspan(offset_, n);
  offset_ += n;
  return b;
}

std::span<const uint8_t> PayloadReader::rest() {
  auto b = payload_.subspan(offset_);
  offset_ = payload_.size();
  return b;
}

Datagram::Datagram(vmci_handle dst, vmci_handle src, std::span<const uint8_t> payload) {
  const size_t total = sizeof(vmci_datagram) + payload.size();
  buffer_.assign((total + sizeof(uint64_t) - 1) / sizeof(uint64_t), 0);
  padding_ = buffer_.size() * sizeof(uint64_t) - total;
  vmci_datagram header{};
  header.dst = dst;
  header.src = src;
  header.payload_size = payload.size();
  std::memcpy(buffer_.data(), &header, sizeof header);
  if (!payload.empty()) {
    std::memcpy(reinterpret_cast<uint8_t*>(buffer_.data()) + sizeof header, payload.data(),
                payload.size());
  }
}

const vmci_datagram* Datagram::get() const {
  return reinterpret_cast<const vmci_datagram*>(buffer_.data());
}

vmci_datagram* Datagram::get() { return reinterpret_cast<vmci_datagram*>(buffer_.data()); }

std::span<const uint8_t> Datagram::payload() const {
  return {reinterpret_cast<const uint8_t*>(buffer_.data()) + sizeof(vmci_datagram),
          size() - sizeof(vmci_datagram)};
}

std::span<const uint8_t> DatagramView::payload() const {
  return {reinterpret_cast<const uint8_t*>(dg_) + sizeof(vmci_datagram),
          static_cast<size_t>(dg_->payload_size)};
}

std::optional<vmci_id> EventView::context_id() const {
  if (!is_context_event(type())) return std::nullopt;
  return load<vmci_event_payload_context>(event_payload(event_)).context_id;
}

std::optional<vmci_handle> EventView::queue_pair() const {
  if (!is_queue_pair_event(type())) return std::nullopt;
  return load<vmci_event_payload_qp>(event_payload(event_)).handle;
}

std::optional<vmci_id> EventView::peer() const {
  if (!is_queue_pair_event(type())) return std::nullopt;
  return load<vmci_event_payload_qp>(event_payload(event_)).peer_id;
}

}  // namespace vmci
