#include "vmci/vsock/capture.h"

#include <cstring>
#include <vector>

#include "vmci/trace/pcapng_file.h"
#include "vmci/vsock/packet.h"

namespace vmci::vsock {
namespace {

// Linux's struct af_vsockmon_hdr.
struct VsockmonHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint16_t op;
  uint16_t transport;
  uint16_t len;  // of the transport header that follows
  uint8_t reserved[2];
};
static_assert(sizeof(VsockmonHeader) == 32);

constexpr uint16_t kTransportUnknown = 0;  // AF_VSOCK_TRANSPORT_UNKNOWN
constexpr uint16_t kTransportNoInfo = 1;   // AF_VSOCK_TRANSPORT_NO_INFO

CaptureOp op_of(uint8_t type) {
  switch (static_cast<PacketType>(type)) {
    case PacketType::kRequest:
    case PacketType::kRequest2:
    case PacketType::kNegotiate:
    case PacketType::kNegotiate2:
    case PacketType::kOffer:
    case PacketType::kAttach:
      return CaptureOp::kConnect;
    case PacketType::kRst:
    case PacketType::kShutdown:
      return CaptureOp::kDisconnect;
    default:
      return CaptureOp::kControl;
  }
}

}  // namespace

std::shared_ptr<Capture> Capture::open(const std::string& path, std::string* error) {
  auto file = trace::PcapngFile::open(path, trace::kLinkTypeVsock, "vsock", error);
  if (!file) return nullptr;
  return std::shared_ptr<Capture>(new Capture(std::move(file)));
}

Capture::Capture(std::unique_ptr<trace::PcapngFile> file) : file_(std::move(file)) {}
Capture::~Capture() = default;

void Capture::control(vmci_id src_cid, vmci_id dst_cid, std::span<const uint8_t> datagram) {
  if (datagram.size() != sizeof(WirePacket)) return;  // not a control packet: decode refuses it
  WirePacket p;
  std::memcpy(&p, datagram.data(), sizeof p);
  write(src_cid, p.src_port, dst_cid, p.dst_port, op_of(p.type), kTransportUnknown,
        datagram.subspan(sizeof(vmci_datagram)), {});
}

void Capture::payload(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port,
                      std::span<const uint8_t> data) {
  write(src_cid, src_port, dst_cid, dst_port, CaptureOp::kPayload, kTransportNoInfo, {}, data);
}

void Capture::closed(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port) {
  write(src_cid, src_port, dst_cid, dst_port, CaptureOp::kDisconnect, kTransportNoInfo, {}, {});
}

void Capture::write(vmci_id src_cid, uint32_t src_port, vmci_id dst_cid, uint32_t dst_port,
                    CaptureOp op, uint16_t transport, std::span<const uint8_t> transport_header,
                    std::span<const uint8_t> payload) {
  VsockmonHeader h{};
  h.src_cid = src_cid;
  h.dst_cid = dst_cid;
  h.src_port = src_port;
  h.dst_port = dst_port;
  h.op = static_cast<uint16_t>(op);
  h.transport = transport;
  h.len = static_cast<uint16_t>(transport_header.size());
  std::vector<uint8_t> record(sizeof h + transport_header.size() + payload.size());
  std::memcpy(record.data(), &h, sizeof h);
  if (!transport_header.empty())
    std::memcpy(record.data() + sizeof h, transport_header.data(), transport_header.size());
  if (!payload.empty())
    std::memcpy(record.data() + sizeof h + transport_header.size(), payload.data(), payload.size());
  file_->write_packet(record);
}

}  // namespace vmci::vsock
