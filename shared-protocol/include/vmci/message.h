// message.h: building and reading datagrams and event payloads without
// casts. VMCI's wire format is a 24-byte struct vmci_datagram followed by
// the payload; what a payload holds is the application's own, and here it
// is written and read as little-endian fields (x86 and arm64 order, as the
// guest and host of a VM share it).
//
//   // build and send
//   vmci::PayloadWriter w;
//   w.u32(7).handle(pair_handle).text("hello");
//   vmci::Datagram dg(service, me, w.bytes());
//   endpoint.datagram_send(dg.get());
//
//   // in a datagram callback
//   vmci::DatagramView view(dg);
//   vmci::PayloadReader r = view.reader();
//   auto op = r.u32();
//   auto pair = r.handle();
//   if (!op || !pair) return VMCI_ERROR_INVALID_ARGS;   // too short: no crash
//
//   // in an event callback
//   vmci::EventView event(ed);
//   if (event.type() == VMCI_EVENT_QP_PEER_DETACH) forget(*event.queue_pair());
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "vmci/handle.h"
#include "vmci/vmci_call_defs.h"

namespace vmci {

// Appends little-endian fields to a payload.
class PayloadWriter {
 public:
  PayloadWriter& u8(uint8_t v);
  PayloadWriter& u16(uint16_t v);
  PayloadWriter& u32(uint32_t v);
  PayloadWriter& u64(uint64_t v);
  // A handle as two u32: context, then resource (struct vmci_handle's layout).
  PayloadWriter& handle(vmci_handle h);
  PayloadWriter& bytes(std::span<const uint8_t> b);
  PayloadWriter& text(std::string_view s);  // the characters, no terminator

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

// Reads little-endian fields from a payload, front to back. A read past
// the end returns nothing and consumes nothing; the reader never reads
// outside its span. The span must outlive the reader.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const uint8_t> payload) : payload_(payload) {}

  std::optional<uint8_t> u8();
  std::optional<uint16_t> u16();
  std::optional<uint32_t> u32();
  std::optional<uint64_t> u64();
  std::optional<vmci_handle> handle();
  std::optional<std::span<const uint8_t>> bytes(size_t n);
  // Everything not read yet (consumed).
  std::span<const uint8_t> rest();

  size_t offset() const { return offset_; }
  size_t remaining() const { return payload_.size() - offset_; }

 private:
  std::optional<uint64_t> little_endian(size_t n);
  std::span<const uint8_t> payload_;
  size_t offset_ = 0;
};

// A datagram of its own: the header and the payload in one buffer, ready
// for Endpoint::datagram_send (or the C API's vmci_datagram_send).
class Datagram {
 public:
  // A payload over VMCI_MAX_DG_SIZE - 24 bytes is kept whole; the send
  // then returns VMCI_ERROR_INVALID_ARGS, as for any datagram that large.
  Datagram(vmci_handle dst, vmci_handle src, std::span<const uint8_t> payload);

  const vmci_datagram* get() const;
  vmci_datagram* get();
  vmci_handle dst() const { return get()->dst; }
  vmci_handle src() const { return get()->src; }
  std::span<const uint8_t> payload() const;
  // Header and payload.
  size_t size() const { return buffer_.size() * sizeof(uint64_t) - padding_; }

 private:
  std::vector<uint64_t> buffer_;  // 8-byte aligned, as struct vmci_datagram is
  size_t padding_ = 0;
};

// A received datagram (a callback's argument), read without casts. Valid
// only while the datagram is, that is during the callback.
class DatagramView {
 public:
  explicit DatagramView(const vmci_datagram* dg) : dg_(dg) {}

  vmci_handle src() const { return dg_->src; }
  vmci_handle dst() const { return dg_->dst; }
  std::span<const uint8_t> payload() const;
  PayloadReader reader() const { return PayloadReader(payload()); }

 private:
  const vmci_datagram* dg_;
};

// An event as an event callback gets it (vmci_event_data and its payload).
class EventView {
 public:
  explicit EventView(const vmci_event_data* event) : event_(event) {}

  uint32_t type() const { return event_->event; }
  // CTX_ID_UPDATE (the new id) and CTX_REMOVED (the context gone).
  std::optional<vmci_id> context_id() const;
  // QP_PEER_ATTACH and QP_PEER_DETACH: the pair, and the peer's context.
  std::optional<vmci_handle> queue_pair() const;
  std::optional<vmci_id> peer() const;

 private:
  const vmci_event_data* event_;
};

}  // namespace vmci
