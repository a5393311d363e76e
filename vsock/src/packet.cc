#include "vmci/vsock/packet.h"

#include <cstring>

namespace vmci::vsock {

const char* packet_type_name(PacketType type) {
  switch (type) {
    case PacketType::kInvalid: return "INVALID";
    case PacketType::kRequest: return "REQUEST";
    case PacketType::kNegotiate: return "NEGOTIATE";
    case PacketType::kOffer: return "OFFER";
    case PacketType::kAttach: return "ATTACH";
    case PacketType::kWrote: return "WROTE";
    case PacketType::kRead: return "READ";
    case PacketType::kRst: return "RST";
    case PacketType::kShutdown: return "SHUTDOWN";
    case PacketType::kWaitingWrite: return "WAITING_WRITE";
    case PacketType::kWaitingRead: return "WAITING_READ";
    case PacketType::kRequest2: return "REQUEST2";
    case PacketType::kNegotiate2: return "NEGOTIATE2";
    case PacketType::kMax: break;
  }
  return "unknown";
}

uint64_t handle_word(vmci_handle handle) {
  uint64_t word;
  static_assert(sizeof word == sizeof handle);
  std::memcpy(&word, &handle, sizeof word);
  return word;
}

std::vector<uint8_t> encode(PacketType type, vmci_id dst_cid, uint32_t src_port,
                            uint32_t dst_port, uint64_t u, uint16_t proto) {
  WirePacket p{};
  p.dg.dst = VMCI_MAKE_HANDLE(
      dst_cid, dst_cid == VMCI_HYPERVISOR_CONTEXT_ID ? kHypervisorPacketResource : kPacketResource);
  p.dg.src = VMCI_MAKE_HANDLE(VMCI_INVALID_ID, kPacketResource);
  p.dg.payload_size = sizeof p - sizeof p.dg;
  p.version = kPacketVersion;
  p.type = static_cast<uint8_t>(type);
  p.proto = proto;
  p.src_port = src_port;
  p.dst_port = dst_port;
  p.u[0] = u;
  std::vector<uint8_t> bytes(sizeof p);
  std::memcpy(bytes.data(), &p, sizeof p);
  return bytes;
}

Decoded decode(std::span<const uint8_t> datagram, Packet* packet, std::string* why) {
  WirePacket p;
  if (datagram.size() < sizeof p) {
    *why = "a control packet of " + std::to_string(datagram.size()) + " bytes (56 expected)";
    return Decoded::kMalformed;
  }
  std::memcpy(&p, datagram.data(), sizeof p);
  if (p.dg.payload_size != datagram.size() - sizeof p.dg) {
    *why = "a control packet whose header claims " + std::to_string(p.dg.payload_size) +
           " payload bytes in a datagram of " + std::to_string(datagram.size());
    return Decoded::kMalformed;
  }
  if (p.dg.src.context == 1) {
    *why = "a control packet from context 1 (VMADDR_CID_LOCAL)";
    return Decoded::kForged;
  }
  const vmci_id expected = p.dg.src.context == VMCI_HYPERVISOR_CONTEXT_ID
                               ? kHypervisorPacketResource
                               : kPacketResource;
  if (p.dg.src.resource != expected) {
    *why = "a control packet from resource " + std::to_string(p.dg.src.resource) + " (" +
           std::to_string(expected) + " expected)";
    return Decoded::kForged;
  }
  Packet out;
  out.raw_type = p.type;
  out.type = p.type < static_cast<uint8_t>(PacketType::kMax) ? static_cast<PacketType>(p.type)
                                                              : PacketType::kInvalid;
  out.src_cid = p.dg.src.context;
  out.dst_cid = p.dg.dst.context;
  out.src_port = p.src_port;
  out.dst_port = p.dst_port;
  out.proto = p.proto;
  out.size = p.u[0];
  out.mode = p.u[0];
  std::memcpy(&out.handle, &p.u[0], sizeof out.handle);
  *packet = out;
  return Decoded::kPacket;
}

}  // namespace vmci::vsock
