// vmci_device_test.cc: the VMCI registers and datagram paths, driven as
// Linux's vmw_vmci and FreeBSD's vmci(4) drive them, against guest RAM in a memfd and a
// hypervisor that records what it is sent.
#include "vmci_device.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "vmci/proto/datagram.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::pcidev {
namespace {

constexpr uint64_t kRamSize = 4 << 20;
constexpr uint64_t kTxBuffer = 0x100000;  // the driver's DMA send buffer
constexpr uint64_t kRxBuffer = 0x200000;  // its DMA receive buffer (header page, then the area)
constexpr uint64_t kRxArea = kRxBuffer + 4096;
constexpr uint64_t kBitmapPage = 0x300000;
constexpr uint64_t kMmio = kMmioRegisterOffset;

struct RecordingHypervisor : Hypervisor {
  std::vector<std::vector<uint8_t>> sent;
  std::vector<uint32_t> taken_ids;
  int64_t answer = VMCI_SUCCESS;
  int64_t send(std::span<const uint8_t> datagram) override {
    sent.emplace_back(datagram.begin(), datagram.end());
    return answer;
  }
  void taken(uint32_t delivery_id) override { taken_ids.push_back(delivery_id); }
};

struct CountingLine : InterruptLine {
  std::map<uint32_t, int> raised;
  void raise(uint32_t vector) override { ++raised[vector]; }
};

std::vector<uint8_t> datagram(vmci_id dst_cid, vmci_id dst_rid, size_t payload, uint8_t fill) {
  std::vector<uint8_t> bytes(payload, fill);
  return proto::make_datagram(VMCI_MAKE_HANDLE(dst_cid, dst_rid), VMCI_MAKE_HANDLE(2, 7), bytes);
}

class VmciDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UniqueFd fd(::memfd_create("ram", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(fd.get(), kRamSize), 0);
    std::vector<SysmemRegion> regions;
    regions.push_back({0, kRamSize, 0, std::move(fd)});
    ASSERT_TRUE(memory_.replace(std::move(regions)).ok);
  }
  uint32_t reg(uint32_t r) { return static_cast<uint32_t>(device_.read(1, kMmio + r, 4)); }
  void set(uint32_t r, uint64_t v) { device_.write(1, kMmio + r, v, 4); }

  // The driver's bring-up for DMA datagrams (vmci_guest_probe_device).
  void bring_up() {
    set(kRegCaps, kCapsDatagram | kCapsNotifications | kCapsPpn64 | kCapsDmaDatagram);
    set(kRegGuestPageShift, 12);
    set(kRegDataInHigh, 0);
    set(kRegDataOutHigh, 0);
    set(kRegImr, kCauseDatagram | kCauseNotification | kCauseDmaDatagram);
    set(kRegControl, kControlIntEnable);
  }
  // vmci_write_data in DMA mode: the result the driver ends up with.
  int64_t dma_send(const std::vector<uint8_t>& dg) {
    DmaHeader header{1, 0, static_cast<uint32_t>(dg.size()), 0, 0};
    EXPECT_TRUE(memory_.write(kTxBuffer, &header, sizeof header));
    EXPECT_TRUE(memory_.write(kTxBuffer + sizeof header, dg.data(), dg.size()));
    set(kRegDataOutLow, kTxBuffer);
    EXPECT_TRUE(memory_.read(kTxBuffer, &header, sizeof header));
    EXPECT_EQ(header.busy, 0u);
    const auto result = static_cast<int32_t>(reg(kRegResultLow));
    return result == VMCI_SUCCESS ? static_cast<int32_t>(header.result) : result;
  }
  // vmci_read_data in DMA mode; returns busy.
  uint32_t dma_receive(uint64_t area_size = VMCI_MAX_DG_SIZE) {
    DmaHeader header{0, 1, 1, 0, 0};
    DmaSgElement element{kRxArea, area_size};
    EXPECT_TRUE(memory_.write(kRxBuffer, &header, sizeof header));
    EXPECT_TRUE(memory_.write(kRxBuffer + sizeof header, &element, sizeof element));
    set(kRegDataInLow, kRxBuffer);
    EXPECT_TRUE(memory_.read(kRxBuffer, &header, sizeof header));
    return header.busy;
  }
  std::vector<uint8_t> guest_bytes(uint64_t gpa, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_TRUE(memory_.read(gpa, out.data(), n));
    return out;
  }

  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  GuestMemory memory_;
  RecordingHypervisor hypervisor_;
  CountingLine line_;
  VmciDevice device_{memory_, hypervisor_, line_, log_};
};

TEST_F(VmciDeviceTest, OffersDatagramsNotificationsPpn64AndDmaAndKeepsWhatTheDriverUses) {
  EXPECT_EQ(reg(kRegCaps), kCapsDatagram | kCapsNotifications | kCapsPpn64 | kCapsDmaDatagram);
  EXPECT_EQ(device_.read(0, kRegCaps, 4), reg(kRegCaps));  // the same in the I/O BAR
  set(kRegCaps, kCapsDatagram | kCapsPpn64 | 0x100);       // an unknown bit is dropped
  EXPECT_EQ(device_.caps_in_use(), kCapsDatagram | kCapsPpn64);
}

TEST_F(VmciDeviceTest, ADmaSendReachesTheHypervisorAndItsResultTheHeaderAndResultLow) {
  bring_up();
  hypervisor_.answer = 1;  // e.g. RESOURCES_QUERY's bitmask
  const auto dg = datagram(2, 10, 100, 0x5a);
  EXPECT_EQ(dma_send(dg), 1);
  ASSERT_EQ(hypervisor_.sent.size(), 1u);
  EXPECT_EQ(hypervisor_.sent[0], dg);
  hypervisor_.answer = VMCI_ERROR_DST_UNREACHABLE;
  EXPECT_EQ(dma_send(dg), VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(VmciDeviceTest, ABadDmaSendIsRefusedWithInvalidArgsAndSendsNothing) {
  bring_up();
  struct Case {
    const char* name;
    DmaHeader header;
  } cases[] = {
      {"a receive opcode", {1, 1, 48, 0, 0}},
      {"shorter than a datagram header", {1, 0, 10, 0, 0}},
      {"larger than VMCI_MAX_DG_SIZE", {1, 0, VMCI_MAX_DG_SIZE + 8, 0, 0}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(memory_.write(kTxBuffer, &c.header, sizeof c.header));
    set(kRegDataOutLow, kTxBuffer);
    EXPECT_EQ(static_cast<int32_t>(reg(kRegResultLow)), VMCI_ERROR_INVALID_ARGS);
  }
  // A size that disagrees with the datagram's own.
  auto dg = datagram(2, 10, 100, 1);
  DmaHeader header{1, 0, static_cast<uint32_t>(dg.size() - 8), 0, 0};
  ASSERT_TRUE(memory_.write(kTxBuffer, &header, sizeof header));
  ASSERT_TRUE(memory_.write(kTxBuffer + sizeof header, dg.data(), dg.size()));
  set(kRegDataOutLow, kTxBuffer);
  EXPECT_EQ(static_cast<int32_t>(reg(kRegResultLow)), VMCI_ERROR_INVALID_ARGS);
  // A buffer outside RAM: nothing written anywhere.
  set(kRegDataOutHigh, 1);
  set(kRegDataOutLow, 0);
  EXPECT_TRUE(hypervisor_.sent.empty());
}

TEST_F(VmciDeviceTest, DeliveriesRaiseDatagramAndADmaReceiveTakesThemAllEndedByAnInvalidHeader) {
  bring_up();
  const auto a = datagram(16, 1, 5, 0xa1), b = datagram(16, 2, 40, 0xb2);
  device_.deliver(7, a);
  device_.deliver(8, b);
  EXPECT_EQ(line_.raised[0], 1);  // once: the queue was empty before the first
  EXPECT_EQ(reg(kRegIcr), kCauseDatagram);
  EXPECT_EQ(dma_receive(), 1u);
  EXPECT_EQ(guest_bytes(kRxArea, a.size()), a);
  const uint64_t b_at = (a.size() + 7) & ~7u;  // 8-byte aligned
  EXPECT_EQ(guest_bytes(kRxArea + b_at, b.size()), b);
  const uint64_t end_at = b_at + ((b.size() + 7) & ~7u);
  vmci_datagram end;
  ASSERT_TRUE(memory_.read(kRxArea + end_at, &end, sizeof end));
  EXPECT_EQ(end.dst.resource, VMCI_INVALID_ID);
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{7, 8}));
  EXPECT_EQ(line_.raised[2], 1);  // DMA_DATAGRAM
  EXPECT_EQ(device_.pending_datagrams(), 0u);
  // Nothing waiting: a receive finds the invalid header at once.
  EXPECT_EQ(dma_receive(), 1u);
  ASSERT_TRUE(memory_.read(kRxArea, &end, sizeof end));
  EXPECT_EQ(end.dst.resource, VMCI_INVALID_ID);
}

TEST_F(VmciDeviceTest, WhatDoesNotFitWaitsForTheNextReceiveAndRaisesDatagramAgain) {
  bring_up();
  const auto big = datagram(16, 1, 3000, 1), next = datagram(16, 2, 3000, 2);
  device_.deliver(1, big);
  device_.deliver(2, next);
  const int before = line_.raised[0];
  EXPECT_EQ(dma_receive(4096), 1u);  // room for one
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{1}));
  EXPECT_EQ(line_.raised[0], before + 1);
  EXPECT_EQ(dma_receive(4096), 1u);
  EXPECT_EQ(guest_bytes(kRxArea, next.size()), next);
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{1, 2}));
}

TEST_F(VmciDeviceTest, NoInterruptWhileInterruptsAreOffOrTheCauseIsMasked) {
  set(kRegImr, kCauseNotification);
  device_.deliver(1, datagram(16, 1, 8, 0));
  EXPECT_TRUE(line_.raised.empty());  // CONTROL never said INT_ENABLE
  set(kRegControl, kControlIntEnable);
  EXPECT_TRUE(line_.raised.empty());  // DATAGRAM is masked
  set(kRegImr, kCauseDatagram);
  EXPECT_EQ(line_.raised[0], 1);  // pending, now enabled
  // Rewriting IMR unchanged raises again what is pending (vmci-irq-bridge
  // relies on it for what was raised before it ran).
  set(kRegImr, kCauseDatagram);
  EXPECT_EQ(line_.raised[0], 2);
  set(kRegControl, kControlIntDisable);
  EXPECT_EQ(reg(kRegStatus), 0u);
}

TEST_F(VmciDeviceTest, PortModeSendsWhatDataOutAssembledAndReportsInResultLow) {
  set(kRegCaps, kCapsDatagram);
  hypervisor_.answer = 16;  // GET_CONTEXT_ID
  const auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_GET_CONTEXT_ID),
                                       VMCI_ANON_SRC_HANDLE, {});
  for (uint8_t byte : dg) device_.write(0, kRegDataOut, byte, 1);
  ASSERT_EQ(hypervisor_.sent.size(), 1u);
  EXPECT_EQ(hypervisor_.sent[0], dg);
  EXPECT_EQ(device_.read(0, kRegResultLow, 4), 16u);
  // A header claiming more than a datagram may hold is refused at once.
  auto bad = dg;
  const uint64_t huge = VMCI_MAX_DG_SIZE;
  std::memcpy(bad.data() + 16, &huge, sizeof huge);
  for (uint8_t byte : bad) device_.write(0, kRegDataOut, byte, 1);
  EXPECT_EQ(static_cast<int32_t>(device_.read(0, kRegResultLow, 4)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(hypervisor_.sent.size(), 1u);
}

TEST_F(VmciDeviceTest, PortModeReadsDatagramsThenAllOnesAndStartsTheNextAtAPageBoundary) {
  const auto a = datagram(16, 1, 4, 0xaa), b = datagram(16, 2, 4, 0xbb);
  device_.deliver(1, a);
  std::vector<uint8_t> got;
  for (int i = 0; i < 40; ++i) got.push_back(static_cast<uint8_t>(device_.read(0, kRegDataIn, 1)));
  EXPECT_TRUE(std::equal(a.begin(), a.end(), got.begin()));
  EXPECT_EQ(got[32], 0xff);  // a is 28 bytes, aligned to 32: then nothing
  device_.deliver(2, b);     // arrives mid-padding: waits for the stream's next page
  for (int i = 40; i < 4096; ++i) EXPECT_EQ(device_.read(0, kRegDataIn, 1), 0xffu) << i;
  std::vector<uint8_t> next;
  for (size_t i = 0; i < b.size(); ++i) {
    next.push_back(static_cast<uint8_t>(device_.read(0, kRegDataIn, 1)));
  }
  EXPECT_EQ(next, b);
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{1, 2}));
}

TEST_F(VmciDeviceTest, TheNotifyBitmapIsTheDevicesOwnHypercallAndRungIndexesLandInIt) {
  bring_up();
  EXPECT_FALSE(device_.notify_indexes(std::vector<uint32_t>{3}));  // no bitmap yet
  std::vector<uint8_t> payload(8);
  const uint64_t ppn = kBitmapPage >> 12;
  std::memcpy(payload.data(), &ppn, sizeof ppn);
  const auto msg = proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_SET_NOTIFY_BITMAP),
                                        VMCI_ANON_SRC_HANDLE, payload);
  EXPECT_EQ(dma_send(msg), VMCI_SUCCESS);
  EXPECT_TRUE(hypervisor_.sent.empty());  // not hostpeer's
  EXPECT_TRUE(device_.notify_indexes(std::vector<uint32_t>{3, 4095, 9000}));
  const auto bitmap = guest_bytes(kBitmapPage, 4096);
  EXPECT_EQ(bitmap[3], 1);
  EXPECT_EQ(bitmap[4095], 1);
  EXPECT_EQ(bitmap[4], 0);
  EXPECT_EQ(line_.raised[1], 1);
  EXPECT_EQ(reg(kRegIcr), kCauseNotification);
  EXPECT_EQ(reg(kRegIcr), 0u);  // taken by the read
  // A page outside RAM is refused.
  const uint64_t outside = kRamSize >> 12;
  std::memcpy(payload.data(), &outside, sizeof outside);
  EXPECT_EQ(dma_send(proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_SET_NOTIFY_BITMAP),
                                          VMCI_ANON_SRC_HANDLE, payload)),
            VMCI_ERROR_INVALID_ARGS);
}

TEST_F(VmciDeviceTest, AResourcesQueryAnswersForTheBitmapAsWellAsForHostpeersHypercalls) {
  bring_up();
  hypervisor_.answer = 0b01;  // hostpeer: GET_CONTEXT_ID yes, SET_NOTIFY_BITMAP no
  std::vector<uint8_t> payload(12);
  const uint32_t query[3] = {2, VMCI_GET_CONTEXT_ID, VMCI_SET_NOTIFY_BITMAP};
  std::memcpy(payload.data(), query, sizeof query);
  EXPECT_EQ(dma_send(proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_RESOURCES_QUERY),
                                          VMCI_ANON_SRC_HANDLE, payload)),
            0b11);
}

TEST_F(VmciDeviceTest, ResetDropsWhatWaitsAndTellsTheHypervisorItIsTaken) {
  bring_up();
  device_.deliver(5, datagram(16, 1, 8, 0));
  set(kRegControl, kControlReset);
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{5}));
  EXPECT_EQ(device_.caps_in_use(), 0u);
  EXPECT_EQ(reg(kRegStatus), 0u);
}

TEST_F(VmciDeviceTest, AccessesThatAreNoRegisterAreRefusedAndChangeNothing) {
  EXPECT_EQ(device_.read(1, 0x100, 4), 0xffffffffu);      // the MSI-X area is not ours
  EXPECT_EQ(device_.read(1, kMmio + 0x3c, 4), 0xffffffffu);  // past the registers
  EXPECT_EQ(device_.read(0, 0x02, 2), 0xffffu);              // unaligned
  device_.write(1, kMmio + 0x1000, 1, 4);
  device_.write(0, kRegCaps, kCapsDatagram, 8);  // too wide
  EXPECT_EQ(device_.caps_in_use(), 0u);
}

// FreeBSD's vmci(4) (sys/dev/vmware/vmci/vmci.c) drives the device its own
// way: it keeps DATAGRAM and NOTIFICATIONS alone (no PPN64, no DMA), so page
// numbers are 32 bits and datagrams go through the ports; with two MSI-X
// vectors it never reads ICR, so each cause must raise its vector again
// whenever new work arrives after the last was taken.
TEST_F(VmciDeviceTest, FreeBsdsDriverGetsPortsThirtyTwoBitPpnsAndAVectorPerNewWork) {
  set(kRegCaps, kCapsDatagram | kCapsNotifications);
  EXPECT_EQ(device_.caps_in_use(), kCapsDatagram | kCapsNotifications);
  // vmci_register_notification_bitmap: {u32 ppn, u32 pad} sent by rep outsb.
  std::vector<uint8_t> payload(8, 0);
  const uint32_t ppn = kBitmapPage >> 12;
  std::memcpy(payload.data(), &ppn, sizeof ppn);
  const auto set_bitmap = proto::make_datagram(VMCI_MAKE_HANDLE(0, VMCI_SET_NOTIFY_BITMAP),
                                               VMCI_ANON_SRC_HANDLE, payload);
  for (uint8_t byte : set_bitmap) device_.write(0, kRegDataOut, byte, 1);
  EXPECT_EQ(static_cast<int32_t>(device_.read(0, kRegResultLow, 4)), VMCI_SUCCESS);
  set(kRegImr, kCauseDatagram | kCauseNotification);
  device_.write(0, kRegControl, kControlIntEnable, 4);

  // dispatch_datagrams reads one page from DATA_IN per interrupt.
  auto read_page = [&] {
    std::vector<uint8_t> page(4096);
    for (auto& byte : page) byte = static_cast<uint8_t>(device_.read(0, kRegDataIn, 1));
    return page;
  };
  const auto a = datagram(16, 1, 100, 0xaa), b = datagram(16, 2, 200, 0xbb);
  device_.deliver(1, a);
  EXPECT_EQ(line_.raised[0], 1);
  auto page = read_page();
  EXPECT_TRUE(std::equal(a.begin(), a.end(), page.begin()));
  device_.deliver(2, b);  // ICR was never read: the vector is raised again all the same
  EXPECT_EQ(line_.raised[0], 2);
  page = read_page();
  EXPECT_TRUE(std::equal(b.begin(), b.end(), page.begin()));
  EXPECT_EQ(hypervisor_.taken_ids, (std::vector<uint32_t>{1, 2}));

  // A rung doorbell lands in the 32-bit-addressed bitmap and raises vector 1.
  EXPECT_TRUE(device_.notify_indexes(std::vector<uint32_t>{5}));
  EXPECT_EQ(guest_bytes(kBitmapPage, 8)[5], 1);
  EXPECT_EQ(line_.raised[1], 1);
  // Detach writes CONTROL_RESET: nothing waits afterwards.
  device_.deliver(3, a);
  device_.write(0, kRegControl, kControlReset, 4);
  EXPECT_EQ(device_.read(0, kRegDataIn, 1), 0xffu);
}

}  // namespace
}  // namespace vmci::pcidev
