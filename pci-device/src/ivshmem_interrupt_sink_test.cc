// ivshmem_interrupt_sink_test.cc: vector k rings ivshmem's eventfd k; the
// bridge record tells unbridged and stale messages apart; MSI and INTx have
// no route.
#include "ivshmem_interrupt_sink.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "ivshmem_test_client.h"
#include "quiet_logger.h"

namespace vmci::pcidev {
namespace {

using namespace std::chrono_literals;

struct NoRegisters : DeviceRegisters {
  uint64_t read(int, uint64_t, unsigned) override { return 0; }
  void write(int, uint64_t, uint64_t, unsigned) override {}
  void reset() override {}
};

// Writes the record as the guest's bridge does: entries, then the magic.
void write_record(std::span<uint8_t> shm, const std::vector<std::pair<uint32_t, MsiMessage>>& copied) {
  auto put = [&](size_t at, uint32_t v) { std::memcpy(shm.data() + at, &v, 4); };
  put(0, 0);
  for (const auto& [k, msg] : copied) {
    size_t at = kBridgeRecordEntriesOffset + 16 * k;
    put(at, static_cast<uint32_t>(msg.address));
    put(at + 4, static_cast<uint32_t>(msg.address >> 32));
    put(at + 8, msg.data);
    put(at + 12, 1);
  }
  put(4, static_cast<uint32_t>(copied.size()));
  put(8, 0xfe000000);
  put(0, kBridgeRecordMagic);
}

class IvshmemInterruptSinkTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server = IvshmemServer::listen((std::filesystem::temp_directory_path() /
                                    ("ivshmem-sink-" + std::to_string(::getpid()) + ".sock"))
                                       .string(),
                                   {kMsixVectors, 4096}, test_support::quiet_logger(), &error);
    ASSERT_TRUE(server) << error;
    thread = std::thread([this] { server->serve(); });
    sink = std::make_unique<IvshmemInterruptSink>(*server, test_support::quiet_logger());
    pci = std::make_unique<PciFunction>(regs, *sink, test_support::quiet_logger());
  }
  void TearDown() override {
    server->stop();
    thread.join();
  }
  void connect_qemu() {
    qemu = connect_to(server->path());
    greeted = read_greeting(qemu.get(), kMsixVectors);
    ASSERT_TRUE(server->wait_for_client(2s));
  }
  // Programs the VMCI device's MSI-X table as Linux's vmw_vmci does, enabled
  // and unmasked: vector k -> 0xfee00000 / 0x20 + k.
  void program_vmci_msix() {
    pci->config_write(0x14, 0xfe000000, 4);
    pci->config_write(0x04, 0x0006, 2);
    for (uint32_t k = 0; k < kMsixVectors; ++k) {
      pci->bar_write(0xfe000000 + 16 * k, 0xfee00000, 4, true);
      pci->bar_write(0xfe000008 + 16 * k, 0x20 + k, 4, true);
      pci->bar_write(0xfe00000c + 16 * k, 0, 4, true);
    }
    pci->config_write(kMsixCapOffset + 2, 0x8000, 2);
  }
  // Reads and clears vector k's eventfd as QEMU does: the count, or 0.
  uint64_t rung(uint32_t k) {
    uint64_t count = 0;
    if (!readable(greeted.vectors[k].get(), 0)) return 0;
    EXPECT_EQ(::read(greeted.vectors[k].get(), &count, 8), 8);
    return count;
  }

  NoRegisters regs;
  std::unique_ptr<IvshmemServer> server;
  std::thread thread;
  std::unique_ptr<IvshmemInterruptSink> sink;
  std::unique_ptr<PciFunction> pci;
  UniqueFd qemu;
  Greeted greeted;
};

TEST_F(IvshmemInterruptSinkTest, EachVmciVectorRingsTheSameIvshmemVector) {
  connect_qemu();
  program_vmci_msix();
  write_record(server->shared_memory(), {{0, {0xfee00000, 0x20}}, {1, {0xfee00000, 0x21}},
                                         {2, {0xfee00000, 0x22}}});
  for (uint32_t k = 0; k < kMsixVectors; ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(pci->raise_interrupt(k), InterruptOutcome::kSentMsix);
    for (uint32_t j = 0; j < kMsixVectors; ++j) EXPECT_EQ(rung(j), j == k ? 1u : 0u);
  }
  EXPECT_EQ(sink->delivered(), 3u);
  EXPECT_EQ(sink->stale(), 0u);
  EXPECT_EQ(sink->unbridged(), 0u);
}

TEST_F(IvshmemInterruptSinkTest, BeforeTheBridgeRunsItRingsAndCountsUnbridged) {
  connect_qemu();
  program_vmci_msix();
  pci->raise_interrupt(1);
  EXPECT_EQ(rung(1), 1u);
  EXPECT_EQ(sink->unbridged(), 1u);
  EXPECT_EQ(sink->delivered(), 1u);
}

TEST_F(IvshmemInterruptSinkTest, AMessageTheBridgeDidNotCopyIsStale) {
  connect_qemu();
  program_vmci_msix();
  // The bridge copied vectors 0 and 1; vector 1 since moved (affinity).
  write_record(server->shared_memory(), {{0, {0xfee00000, 0x20}}, {1, {0xfee01000, 0x31}}});
  pci->raise_interrupt(0);
  pci->raise_interrupt(1);
  pci->raise_interrupt(2);  // never copied
  EXPECT_EQ(sink->stale(), 2u);
  EXPECT_EQ(sink->delivered(), 3u);  // rung anyway
  EXPECT_EQ(rung(1), 1u);
}

TEST_F(IvshmemInterruptSinkTest, WithoutQemuNothingIsDelivered) {
  program_vmci_msix();
  pci->raise_interrupt(0);
  EXPECT_EQ(sink->delivered(), 0u);
  EXPECT_EQ(sink->undelivered(), 1u);
}

TEST_F(IvshmemInterruptSinkTest, MsiAndIntxHaveNoRoute) {
  connect_qemu();
  pci->config_write(0x04, 0x0000, 2);  // INTx allowed
  EXPECT_EQ(pci->raise_interrupt(0), InterruptOutcome::kAssertedIntx);
  pci->config_write(kMsiCapOffset + 4, 0xfee00000, 4);
  pci->config_write(kMsiCapOffset + 12, 0x25, 2);
  pci->config_write(kMsiCapOffset + 2, 0x0001, 2);
  EXPECT_EQ(pci->raise_interrupt(0), InterruptOutcome::kSentMsi);
  EXPECT_EQ(sink->undelivered(), 2u);
  for (uint32_t k = 0; k < kMsixVectors; ++k) EXPECT_EQ(rung(k), 0u);
}

TEST(BridgeRecord, NeedsTheMagicAndReadsOnlyCopiedEntries) {
  alignas(4096) static uint8_t shm[4096];
  std::memset(shm, 0, sizeof(shm));
  EXPECT_FALSE(read_bridge_record(shm));
  write_record(shm, {{2, {0x1'fee00000, 0x99}}});
  auto record = read_bridge_record(shm);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->vectors, 1u);
  EXPECT_EQ(record->vmci_bar1, 0xfe000000u);
  EXPECT_FALSE(record->entries[0]);
  EXPECT_FALSE(record->entries[1]);
  ASSERT_TRUE(record->entries[2]);
  EXPECT_EQ(record->entries[2]->address, 0x1'fee00000u);
  EXPECT_EQ(record->entries[2]->data, 0x99u);
  EXPECT_FALSE(read_bridge_record(std::span<const uint8_t>(shm, 16)));  // too small
}

}  // namespace
}  // namespace vmci::pcidev
