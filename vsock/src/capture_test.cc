#include "vmci/vsock/capture.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "test_world.h"
#include "vmci/trace/pcapng_file.h"
#include "vmci/vsock/datagram_socket.h"
#include "vmci/vsock/packet.h"
#include "vmci/vsock/transport.h"

namespace vmci::vsock {
namespace {

using namespace std::chrono_literals;

// Linux's struct af_vsockmon_hdr, as a reader sees it.
struct Vsockmon {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port;
  uint16_t op, transport, len;
  uint8_t reserved[2];
};
static_assert(sizeof(Vsockmon) == 32);

struct Record {
  Vsockmon h;
  size_t payload_size;
};

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "vsock_capture_" + std::to_string(::getpid()) + ".pcapng";
    std::string error;
    capture_ = Capture::open(path_, &error);
    ASSERT_TRUE(capture_) << error;
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::vector<Record> records() {
    std::vector<std::vector<uint8_t>> packets;
    std::string error;
    EXPECT_TRUE(trace::PcapngFile::read_packets(path_, &packets, &error)) << error;
    std::vector<Record> out;
    for (const auto& p : packets) {
      Record r{};
      EXPECT_GE(p.size(), sizeof r.h);
      std::memcpy(&r.h, p.data(), std::min(p.size(), sizeof r.h));
      r.payload_size = p.size() - sizeof r.h - r.h.len;
      out.push_back(r);
    }
    return out;
  }

  std::string path_;
  std::shared_ptr<Capture> capture_;
};

TEST_F(CaptureTest, AControlPacketIsItsOpWithThePacketAsTransportHeader) {
  const auto request = encode(PacketType::kRequest2, 2, 1025, 5000, 262144, kProtoQueueState);
  capture_->control(77, 2, request);
  const auto rst = encode(PacketType::kRst, 77, 5000, 1025, 0, 0);
  capture_->control(2, 77, rst);
  const auto wrote = encode(PacketType::kWrote, 2, 1025, 5000, 0, 0);
  capture_->control(77, 2, wrote);
  const uint8_t short_datagram[24] = {};
  capture_->control(77, 2, short_datagram);  // not a control packet: not recorded
  const auto all = records();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].h.op, static_cast<uint16_t>(CaptureOp::kConnect));
  EXPECT_EQ(all[0].h.src_cid, 77u);
  EXPECT_EQ(all[0].h.src_port, 1025u);
  EXPECT_EQ(all[0].h.dst_cid, 2u);
  EXPECT_EQ(all[0].h.dst_port, 5000u);
  EXPECT_EQ(all[0].h.transport, 0u);
  EXPECT_EQ(all[0].h.len, 32u);
  EXPECT_EQ(all[0].payload_size, 0u);
  EXPECT_EQ(all[1].h.op, static_cast<uint16_t>(CaptureOp::kDisconnect));
  EXPECT_EQ(all[2].h.op, static_cast<uint16_t>(CaptureOp::kControl));
}

TEST_F(CaptureTest, AStreamsHandshakeBytesAndCloseAreRecordedInOrder) {
  TestWorld world;
  auto guest = world.connect_guest();
  std::error_code ec;
  auto host_vsock = Transport::open(world.host(), {}, ec);
  ASSERT_TRUE(host_vsock) << ec.message();
  TransportOptions options;
  options.capture = capture_;
  auto guest_vsock = Transport::open(*guest, options, ec);
  ASSERT_TRUE(guest_vsock) << ec.message();
  auto listener = host_vsock->listen(5000, 1, ec);
  ASSERT_TRUE(listener) << ec.message();
  auto client = guest_vsock->connect({VMCI_HOST_CONTEXT_ID, 5000}, ec);
  ASSERT_TRUE(client) << ec.message();
  auto server = listener->accept(5s, ec);
  ASSERT_TRUE(server) << ec.message();
  const std::vector<uint8_t> up(100, 'u'), down(60, 'd');
  ASSERT_EQ(client->write_all(up.data(), up.size(), ec), up.size());
  ASSERT_EQ(server->write_all(down.data(), down.size(), ec), down.size());
  std::vector<uint8_t> got(down.size());
  size_t done = 0;
  while (done < got.size() && !ec) done += client->read_some(got.data() + done, got.size() - done, 5s, ec);
  ASSERT_EQ(got, down);
  client->close();

  const vmci_id me = guest->get_context_id();
  const uint32_t port = client->local_address().port;
  std::vector<std::tuple<uint16_t, uint64_t, uint32_t, uint64_t, uint32_t, size_t>> seen;
  // Up to the close: after it, the host's READ for what the guest took
  // may still come and be answered RST.
  for (const auto& r : records()) {
    seen.emplace_back(r.h.op, r.h.src_cid, r.h.src_port, r.h.dst_cid, r.h.dst_port,
                      r.payload_size);
    if (r.h.op == static_cast<uint16_t>(CaptureOp::kDisconnect) && r.h.transport == 1) break;
  }
  const uint16_t connect = 1, disconnect = 2, payload = 4;
  // REQUEST2 out, NEGOTIATE2 in, OFFER out, ATTACH in; the bytes written,
  // then read (WROTE packets may come between); the close.
  std::erase_if(seen, [](const auto& s) { return std::get<0>(s) == 3; });
  const decltype(seen) expected = {
      {connect, me, port, 2, 5000, 0},  {connect, 2, 5000, me, port, 0},
      {connect, me, port, 2, 5000, 0},  {connect, 2, 5000, me, port, 0},
      {payload, me, port, 2, 5000, 100}, {payload, 2, 5000, me, port, 60},
      {disconnect, me, port, 2, 5000, 0},
  };
  EXPECT_EQ(seen, expected);
}

TEST_F(CaptureTest, ADatagramSocketsSendsAndReceivesArePayloadRecords) {
  TestWorld world;
  auto guest = world.connect_guest();
  std::error_code ec;
  auto host_socket = DatagramSocket::bind(world.host(), {kCidAny, 4000}, ec);
  ASSERT_TRUE(host_socket) << ec.message();
  auto guest_socket = DatagramSocket::bind(*guest, {kCidAny, kPortAny}, ec,
                                           DatagramSocket::kDefaultReceiveBytes, capture_);
  ASSERT_TRUE(guest_socket) << ec.message();
  ASSERT_EQ(guest_socket->send_to("ping", 4, {VMCI_HOST_CONTEXT_ID, 4000}, ec), 4u) << ec.message();
  char buf[16];
  Address from;
  ASSERT_EQ(host_socket->receive_from(buf, sizeof buf, &from, 5s, ec), 4u) << ec.message();
  ASSERT_EQ(host_socket->send_to("pong!", 5, from, ec), 5u) << ec.message();
  ASSERT_EQ(guest_socket->receive_from(buf, sizeof buf, nullptr, 5s, ec), 5u) << ec.message();

  const vmci_id me = guest->get_context_id();
  const auto all = records();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].h.op, static_cast<uint16_t>(CaptureOp::kPayload));
  EXPECT_EQ(all[0].h.src_cid, me);
  EXPECT_EQ(all[0].h.src_port, from.port);
  EXPECT_EQ(all[0].h.dst_cid, 2u);
  EXPECT_EQ(all[0].h.dst_port, 4000u);
  EXPECT_EQ(all[0].payload_size, 4u);
  EXPECT_EQ(all[1].h.op, static_cast<uint16_t>(CaptureOp::kPayload));
  EXPECT_EQ(all[1].h.src_cid, 2u);
  EXPECT_EQ(all[1].h.src_port, 4000u);
  EXPECT_EQ(all[1].h.dst_cid, me);
  EXPECT_EQ(all[1].payload_size, 5u);
}

}  // namespace
}  // namespace vmci::vsock
