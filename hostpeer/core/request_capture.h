// request_capture.h: what `vmci-hostpeer --capture FILE.pcapng` writes:
// the same reports as the JSON trace (request_observer.h), each as one
// binary record in one packet of a pcapng file (LINKTYPE_USER0), which the
// Wireshark dissector share/vmci-hostpeer/wireshark/vmci.lua reads. Datagrams
// are recorded whole, payloads included. docs/CAPTURE.md is the reference
// for the record format; the constants below are its numbers.
//
//   auto file = trace::PcapngFile::open(path, trace::kLinkTypeUser0, "vmci", &error);
//   core.observe_with(std::make_shared<RequestCapture>(std::move(file)));
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/request_observer.h"
#include "vmci/trace/pcapng_file.h"

namespace vmci::host {

// Every record starts with this header, then `body_size` bytes of body.
// Little-endian, as the host.
struct CaptureRecordHeader {
  char magic[4];         // "VMCI"
  uint8_t version;       // kCaptureVersion
  uint8_t kind;          // CaptureKind
  uint16_t header_size;  // sizeof(CaptureRecordHeader): bodies start here
  uint64_t peer;         // hostpeer's number for the connection (0: none)
  uint32_t cid;          // that connection's context (the sender, the receiver)
  uint32_t body_size;
  int64_t result;        // the request's result or status; 0 where there is none
};
static_assert(sizeof(CaptureRecordHeader) == 32);

inline constexpr uint8_t kCaptureVersion = 1;

enum class CaptureKind : uint8_t {
  kStart = 1,            // body: the limits, 5 x u64
  kAdmit = 2,            // body: u8 role (proto::Role), 7 reserved, i64 pid; result: status
  kRemove = 3,           // no body
  kSend = 4,             // body: the VMCI datagram; result: the send's
  kDeliver = 5,          // body: the VMCI datagram handed to the peer
  kRing = 6,             // body: doorbell handle, u64 notify index
  kQueuePairAlloc = 7,   // body: handle, u32 peer, flags, priv, 0, u64 produce, consume, handle out
  kQueuePairDetach = 8,  // body: handle
  kDoorbellCreate = 9,   // body: u32 resource, priv, u64 index, handle out
  kDoorbellDestroy = 10, // body: handle
  kDoorbellNotify = 11,  // body: handle, u32 priv, 0
  kHandleCreate = 12,    // body: u32 resource, flags, priv, 0, handle out
  kHandleDestroy = 13,   // body: handle
  kContextIdUpdate = 14, // body: u32 old cid, u32 new cid
};

class RequestCapture final : public RequestObserver {
 public:
  explicit RequestCapture(std::shared_ptr<trace::PcapngFile> file) : file_(std::move(file)) {}

  // A capture is complete: while it runs no datagram or ring takes a fast
  // path around hostpeer.
  bool needs_all_traffic() const override { return true; }

  void started(const Limits& limits) override;
  void admitted(uint64_t peer, proto::Role role, int64_t pid, vmci_id cid, int status) override;
  void removed(uint64_t peer, vmci_id cid) override;
  void sent(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram,
            int64_t result) override;
  void queue_pair_alloc(uint64_t peer, vmci_id cid, const QpAllocRequest& request, int status,
                        vmci_handle out) override;
  void queue_pair_detach(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void doorbell_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t priv_flags,
                       uint64_t notify_index, int status, vmci_handle out) override;
  void doorbell_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void doorbell_notify(uint64_t peer, vmci_id cid, vmci_handle handle, uint32_t priv_flags,
                       int status) override;
  void handle_create(uint64_t peer, vmci_id cid, vmci_id resource, uint32_t flags,
                     uint32_t priv_flags, int status, vmci_handle out) override;
  void handle_destroy(uint64_t peer, vmci_id cid, vmci_handle handle, int status) override;
  void context_id_update(vmci_id old_cid, vmci_id new_cid, int status) override;
  void delivered(uint64_t peer, vmci_id cid, std::span<const uint8_t> datagram) override;
  void rang(uint64_t peer, vmci_id cid, vmci_handle doorbell, uint64_t index) override;

 private:
  // A record's body, built field by field.
  class Body {
   public:
    Body& u32(uint32_t v) { return put(&v, sizeof v); }
    Body& u64(uint64_t v) { return put(&v, sizeof v); }
    Body& handle(vmci_handle h) { return u32(h.context).u32(h.resource); }
    Body& put(const void* data, size_t size);
    std::span<const uint8_t> bytes() const { return bytes_; }

   private:
    std::vector<uint8_t> bytes_;
  };

  void write(CaptureKind kind, uint64_t peer, vmci_id cid, int64_t result,
             std::span<const uint8_t> body);
  std::shared_ptr<trace::PcapngFile> file_;
};

}  // namespace vmci::host
