#include "vmci/vsock/packet.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmci/vsock/errors.h"

namespace vmci::vsock {
namespace {

std::vector<uint8_t> hex(const std::string& text) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < text.size(); i += 2) {
    if (text[i] == ' ') {
      --i;
      continue;
    }
    out.push_back(static_cast<uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The spec's worked example: guest 3, port 1025, to host 2, port 1234,
// REQUEST2 with 256 KiB and the queue-state protocol.
TEST(Packet, Request2IsLaidOutByteForByte) {
  auto bytes = encode(PacketType::kRequest2, 2, 1025, 1234, 262144, kProtoQueueState);
  ASSERT_EQ(bytes.size(), 56u);
  const auto expected = hex(
      "02000000 01000000 ffffffff 01000000 2000000000000000"
      "01 0b 0100 01040000 d2040000 00000000 0000040000000000 0000000000000000");
  EXPECT_EQ(bytes, expected);
}

TEST(Packet, TheHypervisorsControlResourceIs15) {
  const auto bytes = encode(PacketType::kRst, VMCI_HYPERVISOR_CONTEXT_ID, 1, 2);
  vmci_datagram dg;
  std::memcpy(&dg, bytes.data(), sizeof dg);
  EXPECT_EQ(dg.dst.resource, kHypervisorPacketResource);
}

TEST(Packet, DecodeReadsWhatEncodeWroteWithTheRoutedSource) {
  const vmci_handle qp = VMCI_MAKE_HANDLE(17, 1030);
  auto bytes = encode(PacketType::kOffer, 2, 1025, 1234, handle_word(qp));
  const vmci_id routed = 17;
  std::memcpy(bytes.data() + 8, &routed, sizeof routed);  // routing stamps the source
  Packet p;
  std::string why;
  ASSERT_EQ(decode(bytes, &p, &why), Decoded::kPacket) << why;
  EXPECT_EQ(p.type, PacketType::kOffer);
  EXPECT_EQ(p.src_cid, 17u);
  EXPECT_EQ(p.dst_cid, 2u);
  EXPECT_EQ(p.src_port, 1025u);
  EXPECT_EQ(p.dst_port, 1234u);
  EXPECT_EQ(p.handle.context, qp.context);
  EXPECT_EQ(p.handle.resource, qp.resource);
}

TEST(Packet, WhatIsRefusedBeforeAnyStateIsLookedAt) {
  struct Case {
    const char* name;
    std::function<void(std::vector<uint8_t>&)> change;
    Decoded result;
  } const cases[] = {
      {"short", [](auto& b) { b.resize(55); }, Decoded::kMalformed},
      {"empty", [](auto& b) { b.clear(); }, Decoded::kMalformed},
      {"payload size lies", [](auto& b) { b[16] = 31; }, Decoded::kMalformed},
      {"longer than its header says", [](auto& b) { b.push_back(0); }, Decoded::kMalformed},
      {"from context 1", [](auto& b) { b[8] = 1, b[9] = b[10] = b[11] = 0; }, Decoded::kForged},
      {"from resource 2", [](auto& b) { b[12] = 2; }, Decoded::kForged},
      {"from the hypervisor's resource 1", [](auto& b) { std::memset(b.data() + 8, 0, 4); },
       Decoded::kForged},
      {"from the hypervisor's resource 15",
       [](auto& b) { std::memset(b.data() + 8, 0, 4), b[12] = 15; }, Decoded::kPacket},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto bytes = encode(PacketType::kWrote, 2, 1025, 1234);
    bytes[8] = 17, bytes[9] = bytes[10] = bytes[11] = 0;
    c.change(bytes);
    Packet p;
    std::string why;
    EXPECT_EQ(decode(bytes, &p, &why), c.result);
    if (c.result != Decoded::kPacket) {
      EXPECT_FALSE(why.empty());
    }
  }
}

TEST(Packet, TypesFromMaxUpDecodeAsInvalidWithTheirRawType) {
  auto bytes = encode(PacketType::kWrote, 2, 1, 2);
  bytes[8] = 17, bytes[9] = bytes[10] = bytes[11] = 0;
  bytes[25] = 200;
  Packet p;
  std::string why;
  ASSERT_EQ(decode(bytes, &p, &why), Decoded::kPacket);
  EXPECT_EQ(p.type, PacketType::kInvalid);
  EXPECT_EQ(p.raw_type, 200);
}

TEST(Errors, VmciStatusesMapAsLinuxsTransportMapsThem) {
  struct Case {
    int64_t status;
    int error;
  } const cases[] = {
      {VMCI_SUCCESS, 0},
      {56, 0},
      {VMCI_ERROR_NO_MEM, ENOMEM},
      {VMCI_ERROR_DUPLICATE_ENTRY, EADDRINUSE},
      {VMCI_ERROR_ALREADY_EXISTS, EADDRINUSE},
      {VMCI_ERROR_NO_ACCESS, EPERM},
      {VMCI_ERROR_NO_RESOURCES, ENOBUFS},
      {VMCI_ERROR_INVALID_RESOURCE, EHOSTUNREACH},
      {VMCI_ERROR_INVALID_ARGS, EINVAL},
      {VMCI_ERROR_DST_UNREACHABLE, EINVAL},
  };
  for (const Case& c : cases) EXPECT_EQ(errno_of_vmci(c.status), c.error) << c.status;
}

}  // namespace
}  // namespace vmci::vsock
