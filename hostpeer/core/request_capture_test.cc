#include "core/request_capture.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "vmci/proto/datagram.h"

namespace vmci::host {
namespace {

class RequestCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "request_capture_" + std::to_string(::getpid()) + ".pcapng";
    std::string error;
    auto file = trace::PcapngFile::open(path_, trace::kLinkTypeUser0, "vmci-hostpeer", &error);
    ASSERT_TRUE(file) << error;
    capture_ = std::make_unique<RequestCapture>(std::move(file));
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  // The records written so far: closes the capture, reads the file back.
  std::vector<std::vector<uint8_t>> records() {
    capture_.reset();
    std::vector<std::vector<uint8_t>> packets;
    std::string error;
    EXPECT_TRUE(trace::PcapngFile::read_packets(path_, &packets, &error)) << error;
    return packets;
  }
  static CaptureRecordHeader header_of(const std::vector<uint8_t>& record) {
    CaptureRecordHeader h{};
    EXPECT_GE(record.size(), sizeof h);
    std::memcpy(&h, record.data(), std::min(record.size(), sizeof h));
    return h;
  }
  static std::vector<uint8_t> body_of(const std::vector<uint8_t>& record) {
    return {record.begin() + sizeof(CaptureRecordHeader), record.end()};
  }

  std::string path_;
  std::unique_ptr<RequestCapture> capture_;
};

TEST_F(RequestCaptureTest, ASendIsTheWholeDatagramWithItsSenderAndResult) {
  const uint8_t hello[] = {'h', 'e', 'l', 'l', 'o'};
  const auto datagram = proto::make_datagram(VMCI_MAKE_HANDLE(2, 4242),
                                             VMCI_MAKE_HANDLE(77, 4243), hello);
  capture_->sent(5, 77, datagram, 29);
  const auto all = records();
  ASSERT_EQ(all.size(), 1u);
  const CaptureRecordHeader h = header_of(all[0]);
  EXPECT_EQ(std::memcmp(h.magic, "VMCI", 4), 0);
  EXPECT_EQ(h.version, kCaptureVersion);
  EXPECT_EQ(h.kind, static_cast<uint8_t>(CaptureKind::kSend));
  EXPECT_EQ(h.header_size, sizeof(CaptureRecordHeader));
  EXPECT_EQ(h.peer, 5u);
  EXPECT_EQ(h.cid, 77u);
  EXPECT_EQ(h.result, 29);
  EXPECT_EQ(h.body_size, datagram.size());
  EXPECT_EQ(body_of(all[0]), datagram);
}

TEST_F(RequestCaptureTest, AHostAllocIsItsRequestAndTheHandleMade) {
  const QpAllocRequest request{VMCI_INVALID_HANDLE, 77, VMCI_QPFLAG_ATTACH_ONLY, 0, 4096, 8192};
  capture_->queue_pair_alloc(3, VMCI_HOST_CONTEXT_ID, request, VMCI_ERROR_NOT_FOUND,
                             VMCI_MAKE_HANDLE(2, 1234));
  const auto all = records();
  ASSERT_EQ(all.size(), 1u);
  const CaptureRecordHeader h = header_of(all[0]);
  EXPECT_EQ(h.kind, static_cast<uint8_t>(CaptureKind::kQueuePairAlloc));
  EXPECT_EQ(h.result, VMCI_ERROR_NOT_FOUND);
  const auto body = body_of(all[0]);
  ASSERT_EQ(body.size(), 48u);
  struct {
    vmci_handle handle;
    uint32_t peer, flags, priv_flags, reserved;
    uint64_t produce_size, consume_size;
    vmci_handle out;
  } b;
  static_assert(sizeof b == 48);
  std::memcpy(&b, body.data(), sizeof b);
  EXPECT_EQ(b.handle.context, VMCI_INVALID_ID);
  EXPECT_EQ(b.peer, 77u);
  EXPECT_EQ(b.flags, VMCI_QPFLAG_ATTACH_ONLY);
  EXPECT_EQ(b.produce_size, 4096u);
  EXPECT_EQ(b.consume_size, 8192u);
  EXPECT_EQ(b.out.context, 2u);
  EXPECT_EQ(b.out.resource, 1234u);
}

TEST_F(RequestCaptureTest, RecordsKeepTheOrderOfTheReports) {
  capture_->admitted(1, proto::Role::kGuest, 4321, 16, VMCI_SUCCESS);
  capture_->rang(1, 16, VMCI_MAKE_HANDLE(16, 7), 3);
  capture_->removed(1, 16);
  const auto all = records();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(header_of(all[0]).kind, static_cast<uint8_t>(CaptureKind::kAdmit));
  EXPECT_EQ(header_of(all[1]).kind, static_cast<uint8_t>(CaptureKind::kRing));
  EXPECT_EQ(header_of(all[2]).kind, static_cast<uint8_t>(CaptureKind::kRemove));
  int64_t pid = 0;
  std::memcpy(&pid, body_of(all[0]).data() + 8, sizeof pid);
  EXPECT_EQ(pid, 4321);
  EXPECT_TRUE(body_of(all[2]).empty());
}

TEST_F(RequestCaptureTest, NeedsAllTrafficAndSoDoObserversThatHoldIt) {
  EXPECT_TRUE(capture_->needs_all_traffic());
  std::shared_ptr<RequestObserver> capture = std::move(capture_);
  RequestObservers both({capture});
  EXPECT_TRUE(both.needs_all_traffic());
  RequestObservers none({});
  EXPECT_FALSE(none.needs_all_traffic());
}

}  // namespace
}  // namespace vmci::host
