// packet.h: the vSockets control packet of Linux's vmw_vsock_vmci_transport,
// byte for byte: a 24-byte VMCI datagram header, then 32 bytes of vsock
// fields (56 in all). Stream sockets send these to resource id 1 of the
// peer's context (15 when the peer is the hypervisor); their data never
// travels in datagrams but through a queue pair.
//
//   const auto bytes = encode(Packet::request2(peer, 1025, 1234, 262144));
//   Packet p;
//   std::string why;
//   if (decode(datagram_bytes, &p, &why) != Decoded::kPacket) log(why);
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmci/vmci_call_defs.h"

namespace vmci::vsock {

// Every context's handle for stream control packets: (any context, 1).
inline constexpr vmci_id kPacketResource = 1;
// The destination resource when the peer is the hypervisor (context 0).
inline constexpr vmci_id kHypervisorPacketResource = 15;
inline constexpr uint8_t kPacketVersion = 1;
// Notify protocols (the `proto` bit mask of REQUEST2 and NEGOTIATE2): bit 0
// is the queue-state protocol, the only one offered.
inline constexpr uint16_t kProtoQueueState = 1;

enum class PacketType : uint8_t {
  kInvalid = 0,
  kRequest = 1,
  kNegotiate = 2,
  kOffer = 3,
  kAttach = 4,
  kWrote = 5,
  kRead = 6,
  kRst = 7,
  kShutdown = 8,
  kWaitingWrite = 9,
  kWaitingRead = 10,
  kRequest2 = 11,
  kNegotiate2 = 12,
  kMax = 13,
};
const char* packet_type_name(PacketType type);

// The wire layout (little-endian, as the host).
struct WirePacket {
  vmci_datagram dg;
  uint8_t version;
  uint8_t type;
  uint16_t proto;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t reserved;
  uint64_t u[2];  // size, mode, handle {context, resource}, or wait {generation, offset}
};
static_assert(sizeof(WirePacket) == 56);

// Shutdown bits (SHUTDOWN's mode, and a socket's own and peer's state).
inline constexpr uint32_t kReceiveShutdown = 1;
inline constexpr uint32_t kSendShutdown = 2;
inline constexpr uint32_t kShutdownMask = 3;

// A decoded control packet: who sent it (the routed source context), to
// which of our contexts, and its fields.
struct Packet {
  PacketType type = PacketType::kInvalid;
  uint8_t raw_type = 0;  // as sent (kMax and above decode as kInvalid)
  vmci_id src_cid = VMCI_INVALID_ID;
  vmci_id dst_cid = VMCI_INVALID_ID;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint16_t proto = 0;
  uint64_t size = 0;       // REQUEST, NEGOTIATE, REQUEST2, NEGOTIATE2
  uint64_t mode = 0;       // SHUTDOWN
  vmci_handle handle{};    // OFFER, ATTACH
};

// The packet `type` from (local cid unknown, src_port) to (dst_cid,
// dst_port), `u` its union's first word (size, mode or handle), as a
// datagram ready for Endpoint::datagram_send. The source context is left
// VMCI_INVALID_ID for routing to stamp.
std::vector<uint8_t> encode(PacketType type, vmci_id dst_cid, uint32_t src_port,
                            uint32_t dst_port, uint64_t u = 0, uint16_t proto = 0);
uint64_t handle_word(vmci_handle handle);

enum class Decoded {
  kPacket,     // *packet holds it
  kMalformed,  // shorter than 56 bytes, or a payload size that does not match
  kForged,     // from context 1 (VMADDR_CID_LOCAL) or a source resource other than 1/15
};
// Decodes a datagram received on the control handle. kMax and above decode
// to a kInvalid packet with raw_type set (the receiver answers INVALID).
Decoded decode(std::span<const uint8_t> datagram, Packet* packet, std::string* why);

}  // namespace vmci::vsock
