// pci_function_test.cc: config space, BAR sizing and routing, MSI-X, MSI, INTx.
#include "pci_function.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "quiet_logger.h"

namespace vmci::pcidev {
namespace {

struct FakeRegisters : DeviceRegisters {
  uint64_t read(int bar, uint64_t offset, unsigned size) override {
    calls.push_back("read " + std::to_string(bar) + " " + std::to_string(offset) + "/" +
                    std::to_string(size));
    return 0x1122334455667788;
  }
  void write(int bar, uint64_t offset, uint64_t value, unsigned size) override {
    calls.push_back("write " + std::to_string(bar) + " " + std::to_string(offset) + "=" +
                    std::to_string(value) + "/" + std::to_string(size));
  }
  void reset() override { calls.push_back("reset"); }
  std::vector<std::string> calls;
};

struct FakeSink : InterruptSink {
  void send_msi(uint64_t address, uint32_t data) override { msis.push_back({address, data}); }
  void send_msix(uint32_t vector, uint64_t address, uint32_t data) override {
    msix_vectors.push_back(vector);
    send_msi(address, data);
  }
  void set_intx(bool asserted) override { intx.push_back(asserted); }
  std::vector<MsiMessage> msis;
  std::vector<uint32_t> msix_vectors;  // the vector of each send_msix
  std::vector<bool> intx;
};

class PciFunctionTest : public testing::Test {
 protected:
  void assign_bars() {
    pci.config_write(0x10, 0xc000, 4);
    pci.config_write(0x14, 0xfe000000, 4);
    pci.config_write(0x04, 0x0007, 2);
  }
  FakeRegisters regs;
  FakeSink sink;
  PciFunction pci{regs, sink, test_support::quiet_logger()};
};

TEST_F(PciFunctionTest, IdentifiesAsVmci) {
  EXPECT_EQ(pci.config_read(0x00, 4), 0x074015adu);
  EXPECT_EQ(pci.config_read(0x00, 2), 0x15adu);
  EXPECT_EQ(pci.config_read(0x02, 2), 0x0740u);
  EXPECT_EQ(pci.config_read(0x08, 4), 0x08800010u);  // class 0x0880, revision 0x10
  EXPECT_EQ(pci.config_read(0x0e, 1), 0x00u);         // header type 0
  EXPECT_EQ(pci.config_read(0x2c, 4), 0x074015adu);
  EXPECT_EQ(pci.config_read(0x3d, 1), 0x01u);  // pin A
  EXPECT_EQ(pci.config_read(0x06, 2) & 0x10, 0x10u);
}

TEST_F(PciFunctionTest, CapabilityListIsMsixThenMsi) {
  EXPECT_EQ(pci.config_read(0x34, 1), kMsixCapOffset);
  EXPECT_EQ(pci.config_read(kMsixCapOffset, 1), 0x11u);
  EXPECT_EQ(pci.config_read(kMsixCapOffset + 1, 1), kMsiCapOffset);
  EXPECT_EQ(pci.config_read(kMsixCapOffset + 2, 2), kMsixVectors - 1);
  EXPECT_EQ(pci.config_read(kMsixCapOffset + 4, 4), 0x1u);       // table: BAR1 + 0
  EXPECT_EQ(pci.config_read(kMsixCapOffset + 8, 4), 0x1001u);    // PBA: BAR1 + 0x1000
  EXPECT_EQ(pci.config_read(kMsiCapOffset, 1), 0x05u);
  EXPECT_EQ(pci.config_read(kMsiCapOffset + 1, 1), 0x00u);
  EXPECT_EQ(pci.config_read(kMsiCapOffset + 2, 2), 0x0080u);  // 64-bit, one message
}

TEST_F(PciFunctionTest, BarSizingProtocol) {
  struct Case {
    uint32_t at, size_mask;
  } cases[] = {{0x10, 0xffffffc1}, {0x14, 0xfffc0000}, {0x18, 0}, {0x1c, 0}, {0x20, 0}, {0x24, 0}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.at);
    pci.config_write(c.at, 0xffffffff, 4);
    EXPECT_EQ(pci.config_read(c.at, 4), c.size_mask);
  }
  // As QEMU's proxy computes it: ~(value & ~0xf) + 1.
  EXPECT_EQ(~(0xffffffc1u & 0xfffffff0u) + 1, kBar0Size);
  EXPECT_EQ(~(0xfffc0000u & 0xfffffff0u) + 1, kBar1Size);
}

TEST_F(PciFunctionTest, BarAddressesRoundTripAndAreTracked) {
  assign_bars();
  EXPECT_EQ(pci.config_read(0x10, 4), 0xc001u);
  EXPECT_EQ(pci.config_read(0x14, 4), 0xfe000000u);
  EXPECT_EQ(pci.bar_address(0), 0xc000u);
  EXPECT_EQ(pci.bar_address(1), 0xfe000000u);
  EXPECT_TRUE(pci.io_decoding());
  EXPECT_TRUE(pci.memory_decoding());
  pci.config_write(0x10, 0xc0ff, 4);  // low bits are not writable
  EXPECT_EQ(pci.bar_address(0), 0xc0c0u);
}

TEST_F(PciFunctionTest, ReadOnlyFieldsIgnoreWrites) {
  pci.config_write(0x00, 0xffffffff, 4);
  pci.config_write(0x08, 0xffffffff, 4);
  pci.config_write(0x34, 0xff, 1);
  EXPECT_EQ(pci.config_read(0x00, 4), 0x074015adu);
  EXPECT_EQ(pci.config_read(0x08, 4), 0x08800010u);
  EXPECT_EQ(pci.config_read(0x34, 1), kMsixCapOffset);
}

TEST_F(PciFunctionTest, BadConfigAccessesAreRefused) {
  EXPECT_EQ(pci.config_read(0xfe, 4), 0xffffffffu);
  EXPECT_EQ(pci.config_read(0x100, 1), 0xffffffffu);
  EXPECT_EQ(pci.config_read(0, 3), 0xffffffffu);
  pci.config_write(0xfd, 0xffffffff, 4);  // no crash, nothing written
  EXPECT_EQ(pci.config_read(0xfc, 4), 0u);
}

TEST_F(PciFunctionTest, BarAccessesRouteToTheModel) {
  assign_bars();
  EXPECT_EQ(pci.bar_read(0xc018, 4, false), 0x55667788u);
  pci.bar_write(0xc004, 2, 4, false);
  EXPECT_EQ(pci.bar_read(0xfe000000 + kMmioRegisterOffset + 0x1c, 4, true), 0x55667788u);
  pci.bar_write(0xfe000000 + kMmioRegisterOffset + 0x24, 0x12345678, 4, true);
  EXPECT_EQ(regs.calls, (std::vector<std::string>{"read 0 24/4", "write 0 4=2/4",
                                                  "read 1 131100/4", "write 1 131108=305419896/4"}));
}

TEST_F(PciFunctionTest, AccessesOutsideTheBarsAreRefused) {
  assign_bars();
  EXPECT_EQ(pci.bar_read(0xc040, 4, false), 0xffffffffu);      // past BAR0
  EXPECT_EQ(pci.bar_read(0xc03e, 4, false), 0xffffffffu);      // runs past BAR0
  EXPECT_EQ(pci.bar_read(0xbfff, 1, false), 0xffu);            // below BAR0
  EXPECT_EQ(pci.bar_read(0xfe040000, 4, true), 0xffffffffu);   // past BAR1
  EXPECT_EQ(pci.bar_read(0xc000, 3, false), UINT64_MAX);       // bad size
  pci.bar_write(0xc000, 1, 16, false);
  EXPECT_TRUE(regs.calls.empty());
}

TEST_F(PciFunctionTest, MsixTableIsServedHereNotByTheModel) {
  assign_bars();
  EXPECT_EQ(pci.bar_read(0xfe00000c, 4, true), 1u);  // vector 0 starts masked
  pci.bar_write(0xfe000010, 0xfee00000, 4, true);
  pci.bar_write(0xfe000018, 0x4041, 4, true);
  EXPECT_EQ(pci.bar_read(0xfe000010, 8, true), 0xfee00000u);
  EXPECT_EQ(pci.bar_read(0xfe000018, 4, true), 0x4041u);
  EXPECT_TRUE(regs.calls.empty());
}

TEST_F(PciFunctionTest, MsixDeliversTheProgrammedMessage) {
  assign_bars();
  pci.bar_write(0xfe000010, 0xfee00000, 4, true);
  pci.bar_write(0xfe000018, 0x4041, 4, true);
  pci.bar_write(0xfe00001c, 0, 4, true);  // unmask vector 1
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  EXPECT_EQ(pci.raise_interrupt(1), InterruptOutcome::kSentMsix);
  ASSERT_EQ(sink.msis.size(), 1u);
  EXPECT_EQ(sink.msis[0].address, 0xfee00000u);
  EXPECT_EQ(sink.msis[0].data, 0x4041u);
  EXPECT_EQ(pci.raise_interrupt(kMsixVectors), InterruptOutcome::kNoSuchVector);
}

TEST_F(PciFunctionTest, MaskedMsixVectorIsPendingUntilUnmasked) {
  assign_bars();
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  pci.bar_write(0xfe000000, 0xfee00000, 4, true);
  pci.bar_write(0xfe000008, 0x30, 4, true);
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kPending);
  EXPECT_EQ(pci.bar_read(0xfe000000 + kMsixPbaOffset, 8, true), 1u);
  EXPECT_TRUE(sink.msis.empty());
  pci.bar_write(0xfe00000c, 0, 4, true);
  ASSERT_EQ(sink.msis.size(), 1u);
  EXPECT_EQ(sink.msis[0].data, 0x30u);
  EXPECT_EQ(pci.bar_read(0xfe000000 + kMsixPbaOffset, 8, true), 0u);
}

// Each MSI-X message reaches the sink with its vector's number, however it
// was released: raised, unmasked in the table, or the function mask cleared.
TEST_F(PciFunctionTest, MsixMessagesCarryTheirVectorNumber) {
  assign_bars();
  for (uint32_t v = 0; v < kMsixVectors; ++v) {
    pci.bar_write(0xfe000000 + 16 * v, 0xfee00000, 4, true);
    pci.bar_write(0xfe000008 + 16 * v, 0x40 + v, 4, true);
  }
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  pci.bar_write(0xfe00000c + 16 * 2, 0, 4, true);
  EXPECT_EQ(pci.raise_interrupt(2), InterruptOutcome::kSentMsix);  // raised
  EXPECT_EQ(pci.raise_interrupt(1), InterruptOutcome::kPending);
  pci.bar_write(0xfe00000c + 16 * 1, 0, 4, true);                   // unmasked
  pci.bar_write(0xfe00000c, 0, 4, true);
  pci.config_write(kMsixCapOffset + 2, 0xc000, 2);                  // function mask
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kPending);
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);                  // cleared
  EXPECT_EQ(sink.msix_vectors, (std::vector<uint32_t>{2, 1, 0}));
  ASSERT_EQ(sink.msis.size(), 3u);
  EXPECT_EQ(sink.msis[0].data, 0x42u);
  EXPECT_EQ(sink.msis[1].data, 0x41u);
  EXPECT_EQ(sink.msis[2].data, 0x40u);
}

TEST_F(PciFunctionTest, FunctionMaskHoldsEveryVector) {
  assign_bars();
  pci.bar_write(0xfe00000c, 0, 4, true);
  pci.config_write(kMsixCapOffset + 2, 0xc000, 2);
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kPending);
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  EXPECT_EQ(sink.msis.size(), 1u);
}

TEST_F(PciFunctionTest, MsiSendsItsOneMessageForEveryVector) {
  pci.config_write(kMsiCapOffset + 4, 0xfee01000, 4);
  pci.config_write(kMsiCapOffset + 8, 0, 4);
  pci.config_write(kMsiCapOffset + 12, 0x4022, 2);
  pci.config_write(kMsiCapOffset + 2, 0x0001, 2);
  EXPECT_TRUE(pci.msi_enabled());
  EXPECT_EQ(pci.raise_interrupt(2), InterruptOutcome::kSentMsi);
  ASSERT_EQ(sink.msis.size(), 1u);
  EXPECT_EQ(sink.msis[0].address, 0xfee01000u);
  EXPECT_EQ(sink.msis[0].data, 0x4022u);
  EXPECT_EQ(pci.msi_message()->data, 0x4022u);
}

TEST_F(PciFunctionTest, IntxWhenNothingElseIsEnabled) {
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kAssertedIntx);
  EXPECT_EQ(pci.config_read(0x06, 2) & 0x8, 0x8u);
  pci.lower_intx();
  EXPECT_EQ(pci.config_read(0x06, 2) & 0x8, 0u);
  EXPECT_EQ(sink.intx, (std::vector<bool>{true, false}));
  pci.config_write(0x04, 0x0400, 2);
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kDisabled);
}

TEST_F(PciFunctionTest, ResetRestoresPowerOnState) {
  assign_bars();
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  pci.reset();
  EXPECT_EQ(pci.bar_address(0), 0u);
  EXPECT_EQ(pci.bar_address(1), 0u);
  EXPECT_FALSE(pci.msix_enabled());
  EXPECT_EQ(pci.config_read(0x04, 2), 0u);
  EXPECT_EQ(regs.calls, std::vector<std::string>{"reset"});
}

}  // namespace
}  // namespace vmci::pcidev

namespace vmci::pcidev {
namespace {

TEST(PciFunctionWithoutMsix, TheCapabilityListIsMsiAloneAndMsixCannotBeEnabled) {
  FakeRegisters regs;
  FakeSink sink;
  PciFunction pci{regs, sink, test_support::quiet_logger(), /*offer_msix=*/false};
  EXPECT_EQ(pci.config_read(0x34, 1), kMsiCapOffset);
  EXPECT_EQ(pci.config_read(kMsiCapOffset, 1), 0x05u);
  EXPECT_EQ(pci.config_read(kMsiCapOffset + 1, 1), 0x00u);  // the end of the list
  pci.config_write(kMsixCapOffset + 2, 0x8000, 2);
  EXPECT_FALSE(pci.msix_enabled());
  // MSI carries every cause (the guest reads ICR).
  pci.config_write(kMsiCapOffset + 4, 0xfee00000, 4);
  pci.config_write(kMsiCapOffset + 12, 0x41, 2);
  pci.config_write(kMsiCapOffset + 2, 0x0001, 2);
  EXPECT_EQ(pci.raise_interrupt(0), InterruptOutcome::kSentMsi);
}

}  // namespace
}  // namespace vmci::pcidev
