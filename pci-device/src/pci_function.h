// pci_function.h: the VMCI device's PCI function, as the guest sees it
// through QEMU's proxy: config space, BAR routing, MSI-X and MSI.
//
// Config space (type 0, 256 bytes; everything the guest reads comes from
// here, QEMU's proxy keeps no copy the guest can see):
//   vendor 0x15AD, device 0x0740 (subsystem the same), revision 0x10,
//   class 0x0880 (other system peripheral, as VMware's device reports),
//   interrupt pin A, capability list: MSI-X at 0x40, then MSI at 0x50.
//   BAR0: I/O, 64 bytes (the registers, VMCI spec section 10).
//   BAR1: memory, 32-bit, non-prefetchable, 256 KiB (Linux uses the MMIO
//         register window iff BAR1 is exactly 256 KiB): the MSI-X table
//         at 0 and its PBA at 0x1000, both inside the first 128 KiB, which
//         this class serves itself; the register window at 128 KiB.
//   Both BARs are 32-bit: QEMU 7.2's proxy sizes each of the six BAR
//   registers on its own (hw/remote/proxy.c, probe_pci_info) and cannot
//   pair the halves of a 64-bit BAR.
//
// BAR accesses arrive as guest addresses (a port, or a memory address);
// PciFunction keeps the bases the guest wrote into config space and routes
// each access to (bar, offset) in the DeviceRegisters model, which never
// sees the MSI-X area (BAR1 offsets below kMsixAreaSize).
//
// Interrupts: raise_interrupt(vector) picks what the guest enabled (MSI-X,
// else MSI, else INTx) and hands the message or the level to an
// InterruptSink (what QEMU can actually deliver is the sink's business: see
// proxy_device.h). A masked MSI-X vector is left pending in the PBA and
// sent when unmasked.
//
// Thread safety: every method may be called from any thread. No lock is held
// while DeviceRegisters or InterruptSink is called, so the model may call
// raise_interrupt from inside read() or write().
//
//   PciFunction pci(model, sink, log);
//   uint64_t v = pci.config_read(0x00, 4);      // 0x074015ad
//   pci.config_write(0x10, 0xc000, 4);          // BAR0 at port 0xc000
//   pci.bar_write(0xc000 + 0x04, 2, 4, false);  // model.write(0, 0x04, 2, 4)
//   pci.raise_interrupt(0);
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace spdlog {
class logger;
}

namespace vmci::pcidev {

constexpr uint16_t kVmwareVendorId = 0x15AD;
constexpr uint16_t kVmciDeviceId = 0x0740;
constexpr uint8_t kVmciRevision = 0x10;
constexpr uint32_t kVmciClassCode = 0x088000;  // base 0x08, sub 0x80, prog-if 0
constexpr uint32_t kConfigSpaceSize = 256;
constexpr uint32_t kBar0Size = 64;
constexpr uint32_t kBar1Size = 256 * 1024;
constexpr uint64_t kMsixAreaSize = 128 * 1024;      // BAR1 [0, 128 KiB): MSI-X
constexpr uint64_t kMmioRegisterOffset = 128 * 1024;  // BAR1's register window
constexpr uint32_t kMsixVectors = 3;  // datagram, notification, DMA datagram
constexpr uint64_t kMsixTableOffset = 0;
constexpr uint64_t kMsixPbaOffset = 0x1000;
constexpr uint8_t kMsixCapOffset = 0x40;
constexpr uint8_t kMsiCapOffset = 0x50;

// The VMCI register and hypercall model. bar is 0 (I/O) or 1 (MMIO, offset
// from the start of BAR1, so the register window starts at 128 KiB); size
// is 1, 2, 4 or 8 and the access lies inside the BAR.
class DeviceRegisters {
 public:
  virtual ~DeviceRegisters() = default;
  virtual uint64_t read(int bar, uint64_t offset, unsigned size) = 0;
  virtual void write(int bar, uint64_t offset, uint64_t value, unsigned size) = 0;
  virtual void reset() = 0;  // the device was reset (QEMU's DEVICE_RESET)
};

// Where interrupts go. send_msi is a message the guest programmed (MSI-X
// table entry or MSI capability); set_intx is the level of pin A.
// send_msix is an MSI-X vector's message with the vector's number, for
// sinks that deliver by number (IvshmemInterruptSink: ivshmem_interrupt_sink.h);
// by default it is send_msi of the message.
class InterruptSink {
 public:
  virtual ~InterruptSink() = default;
  virtual void send_msi(uint64_t address, uint32_t data) = 0;
  virtual void send_msix(uint32_t vector, uint64_t address, uint32_t data) {
    (void)vector;
    send_msi(address, data);
  }
  virtual void set_intx(bool asserted) = 0;
};

struct MsiMessage {
  uint64_t address;
  uint32_t data;
};

enum class InterruptOutcome {
  kSentMsix,     // an MSI-X message went to the sink
  kSentMsi,      // the MSI message went to the sink
  kAssertedIntx, // INTx asserted at the sink
  kPending,      // MSI-X vector masked: pending in the PBA
  kDisabled,     // nothing enabled (INTx disabled in the command register)
  kNoSuchVector,
};

class PciFunction {
 public:
  // registers and interrupts must outlive this object. Without
  // `offer_msix` the capability list has MSI alone: a guest that polls its
  // interrupt handlers (Linux's irqpoll polls only shared ones) then has
  // one handler for every cause, which reads ICR.
  PciFunction(DeviceRegisters& registers, InterruptSink& interrupts,
              std::shared_ptr<spdlog::logger> log, bool offer_msix = true);

  // Config space. len 1, 2 or 4 and addr + len <= 256, else logged and
  // refused (reads answer all ones).
  uint64_t config_read(uint32_t addr, uint32_t len);
  void config_write(uint32_t addr, uint32_t value, uint32_t len);

  // A BAR access at a guest address. An access that is in no BAR, or runs
  // past the end of one, or has a size other than 1, 2, 4, 8, is logged and
  // refused (reads answer all ones of its size).
  uint64_t bar_read(uint64_t addr, unsigned size, bool memory);
  void bar_write(uint64_t addr, uint64_t value, unsigned size, bool memory);

  // Power-on state again (BARs unassigned, decoding, MSI and MSI-X off,
  // vectors masked), then registers.reset().
  void reset();

  InterruptOutcome raise_interrupt(uint32_t vector);
  void lower_intx();  // the model's cause was acknowledged (INTx only)

  // What the guest programmed, for whoever delivers interrupts another way.
  std::optional<MsiMessage> msix_message(uint32_t vector) const;
  std::optional<MsiMessage> msi_message() const;
  bool msix_enabled() const;
  bool msi_enabled() const;

  // The BAR's guest address, 0 while unassigned.
  uint64_t bar_address(int bar) const;
  bool io_decoding() const;
  bool memory_decoding() const;

 private:
  struct Route {
    int bar;
    uint64_t offset;
  };
  struct MsixEntry {
    uint32_t address_low;
    uint32_t address_high;
    uint32_t data;
    uint32_t control;  // bit 0: masked
  };

  void set_defaults();  // caller holds mutex_
  uint32_t dword(uint32_t at) const;
  uint16_t word(uint32_t at) const;
  std::optional<Route> route(uint64_t addr, unsigned size, bool memory) const;
  uint64_t msix_read(uint64_t offset, unsigned size) const;
  struct VectorMessage {
    uint32_t vector;
    MsiMessage message;
  };
  // Returns a message that became deliverable (a pending vector unmasked).
  void msix_write(uint64_t offset, uint64_t value, unsigned size,
                  std::optional<VectorMessage>* unmasked);
  std::optional<MsiMessage> take_pending_locked(uint32_t vector);
  bool msix_masked_locked(uint32_t vector) const;

  DeviceRegisters& registers_;
  InterruptSink& interrupts_;
  std::shared_ptr<spdlog::logger> log_;
  const bool offer_msix_;

  mutable std::mutex mutex_;
  std::array<uint8_t, kConfigSpaceSize> config_{};  // guarded by mutex_
  std::array<uint8_t, kConfigSpaceSize> wmask_{};   // constant after construction
  std::array<MsixEntry, kMsixVectors> msix_{};      // guarded by mutex_
  uint64_t msix_pending_ = 0;                       // guarded by mutex_
};

}  // namespace vmci::pcidev
