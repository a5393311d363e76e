// capture.h: what a Transport's sockets and datagram sockets send and
// receive, written to a pcapng file as Linux's vsockmon records
// (LINKTYPE_VSOCK, 271), which Wireshark's and tshark's own vsock
// dissector reads (vsock.src_cid, vsock.dst_port, vsock.op, vsock.payload,
// ...). `vmci-vsock-run --capture FILE` makes one for its program's sockets.
//
// A record is `struct af_vsockmon_hdr` (Linux's include/uapi/linux/
// vsockmon.h, 32 bytes, little-endian), then a transport header of `len`
// bytes, then the payload:
//   - a control packet sent or received: op CONNECT (REQUEST, REQUEST2,
//     NEGOTIATE, NEGOTIATE2, OFFER, ATTACH), DISCONNECT (RST, SHUTDOWN) or
//     CONTROL (the rest); transport 0 (vsockmon has no number for VMCI) and
//     the 32 bytes of the packet after its datagram header as the transport
//     header; no payload;
//   - stream data written or read: op PAYLOAD, transport 1 (no transport
//     information), the bytes as payload;
//   - a stream closed here (its pair detached, no packet): op DISCONNECT,
//     transport 1, nothing more.
//   - a datagram socket's datagram sent or taken (DatagramSocket::bind's
//     `capture`): op PAYLOAD, transport 1, its payload.
// Records carry the data the sockets carry: the file is made with mode 0600.
//
//   std::string error;
//   auto capture = vmci::vsock::Capture::open("/tmp/vsock.pcapng", &error);
//   TransportOptions options;
//   options.capture = capture;  // null: nothing is captured, at the cost of a branch
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "vmci/vmci_defs.h"

namespace vmci::trace {
class PcapngFile;
}

namespace vmci::vsock {

// Linux's enum af_vsockmon_op.
enum class CaptureOp : uint16_t {
  kUnknown = 0,
  kConnect = 1,
  kDisconnect = 2,
  kControl = 3,
  kPayload = 4,
};

class Capture {
 public:
  // Creates or truncates `path`; null with *error if it cannot.
  static std::shared_ptr<Capture> open(const std::string& path, std::string* error);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // A control packet (`datagram`: the 56 bytes as sent or received) from
  // `src_cid` to `dst_cid`; its ports and type are read from it.
  void control(vmci_id src_cid, vmci_id dst_cid, std::span<const uint8_t> datagram);
  // Stream bytes from (src_cid, src_port) to (dst_cid, dst_port).
  void payload(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port,
               std::span<const uint8_t> data);
  // A stream closed here without a packet (the peer sees its pair detach).
  void closed(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port);

 private:
  explicit Capture(std::unique_ptr<trace::PcapngFile> file);
  void write(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port,
             CaptureOp op, uint16_t transport, std::span<const uint8_t> transport_header,
             std::span<const uint8_t> payload);
  std::unique_ptr<trace::PcapngFile> file_;
};

}  // namespace vmci::vsock
