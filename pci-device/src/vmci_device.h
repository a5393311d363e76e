// vmci_device.h: the VMCI device's registers and datagram paths, as Linux
// 6.1's vmw_vmci (drivers/misc/vmw_vmci/vmci_guest.c) and FreeBSD's vmci
// drive them; the PCI function around it is pci_function.h.
//
// Registers (32-bit, the same offsets in BAR0's ports and in BAR1's MMIO
// window at 128 KiB):
//   0x00 STATUS       bit 0: interrupts on (CONTROL's INT_ENABLE/DISABLE)
//   0x04 CONTROL      write: bit 0 RESET, bit 1 INT_ENABLE, bit 2 INT_DISABLE
//   0x08 ICR          the pending causes; a read takes them (0: none)
//   0x0c IMR          the causes that may interrupt; a write raises again
//                     every cause that is pending and enabled
//   0x10 DATA_OUT     port mode: the guest writes one whole datagram, bytes
//   0x14 DATA_IN      port mode: the guest reads pending datagrams, bytes
//   0x18 CAPS         read: offered; write: what the driver uses
//   0x1c RESULT_LOW   the result of the last send
//   0x20 RESULT_HIGH  0
//   0x24 DATA_OUT_LOW  DMA: writing it sends the buffer at HIGH:LOW
//   0x28 DATA_OUT_HIGH
//   0x2c DATA_IN_LOW   DMA: writing it fills the buffer at HIGH:LOW
//   0x30 DATA_IN_HIGH
//   0x34 GUEST_PAGE_SHIFT (must be 12)
// Causes (ICR and IMR bits; with MSI-X, the vector of the same index):
// DATAGRAM 1 (vector 0), NOTIFICATION 2 (vector 1), DMA_DATAGRAM 4
// (vector 2). Capabilities offered: DATAGRAM, NOTIFICATIONS, PPN64 and
// DMA_DATAGRAM (Linux uses DMA datagrams whenever BAR1 is the 256 KiB MMIO
// BAR, and then requires the capability).
//
// Sending. A datagram the guest sends (DATA_OUT's bytes, or the DMA
// buffer: a 24-byte header {busy, opcode 0, size, rsvd, result} and the
// datagram inline) goes to the Hypervisor, and the VCPU waits for the
// answer (the BAR write is synchronous in QEMU's proxy): the result goes
// to RESULT_LOW and, in DMA mode, to the header's result, and then busy is
// cleared. Two hypercalls are the device's own: VMCI_SET_NOTIFY_BITMAP
// (the guest's bitmap page, one byte per notify index, bit 0 set when a
// doorbell on that index is rung), and in VMCI_RESOURCES_QUERY the answer
// for that resource.
//
// Receiving. Datagrams for the guest (deliver()) wait in the device; the
// DATAGRAM cause is raised while any wait. In DMA mode (DATA_IN_LOW: a
// header {busy 0, opcode 1, size 1} and one S/G element {addr, size} after
// it) the device copies as many whole datagrams as fit, each at an 8-byte
// boundary, ends them with an invalid header (all ones) if 24 bytes are
// left, sets busy to 1 and raises DMA_DATAGRAM. In port mode DATA_IN reads
// the same stream a byte at a time: all ones where no datagram waits, a
// datagram starting only at a 4 KiB boundary of the stream once all ones
// were read (the guest skips to the next page at an invalid header).
// Every datagram the guest took is reported (Hypervisor::taken).
//
// Malformed input from the guest (a bad header, a size past the buffer, an
// address outside RAM, an unknown register) is logged, answered with an
// error where the register has one, and changes nothing else.
//
// Thread safety: every method may be called from any thread (VCPU
// accesses, deliveries, notifications); the Hypervisor and the interrupt
// line are called without the device's lock held.
//
//   VmciDevice device(memory, hypervisor, line, log);
//   PciFunction pci(device, sink, log);
//   device.deliver(id, datagram);      // from hostpeer
//   device.notify_indexes({3, 9});     // doorbells rung
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "guest_memory.h"
#include "pci_function.h"

namespace vmci::pcidev {

inline constexpr uint32_t kRegStatus = 0x00;
inline constexpr uint32_t kRegControl = 0x04;
inline constexpr uint32_t kRegIcr = 0x08;
inline constexpr uint32_t kRegImr = 0x0c;
inline constexpr uint32_t kRegDataOut = 0x10;
inline constexpr uint32_t kRegDataIn = 0x14;
inline constexpr uint32_t kRegCaps = 0x18;
inline constexpr uint32_t kRegResultLow = 0x1c;
inline constexpr uint32_t kRegResultHigh = 0x20;
inline constexpr uint32_t kRegDataOutLow = 0x24;
inline constexpr uint32_t kRegDataOutHigh = 0x28;
inline constexpr uint32_t kRegDataInLow = 0x2c;
inline constexpr uint32_t kRegDataInHigh = 0x30;
inline constexpr uint32_t kRegGuestPageShift = 0x34;

inline constexpr uint32_t kControlReset = 0x1;
inline constexpr uint32_t kControlIntEnable = 0x2;
inline constexpr uint32_t kControlIntDisable = 0x4;

inline constexpr uint32_t kCapsHypercall = 0x1;
inline constexpr uint32_t kCapsGuestcall = 0x2;
inline constexpr uint32_t kCapsDatagram = 0x4;
inline constexpr uint32_t kCapsNotifications = 0x8;
inline constexpr uint32_t kCapsPpn64 = 0x10;
inline constexpr uint32_t kCapsDmaDatagram = 0x20;
inline constexpr uint32_t kCapsOffered =
    kCapsDatagram | kCapsNotifications | kCapsPpn64 | kCapsDmaDatagram;

inline constexpr uint32_t kCauseDatagram = 0x1;
inline constexpr uint32_t kCauseNotification = 0x2;
inline constexpr uint32_t kCauseDmaDatagram = 0x4;

// The DMA buffers' header (vmci_data_in_out_header) and S/G element.
struct DmaHeader {
  uint32_t busy;
  uint32_t opcode;  // 0 send, 1 receive
  uint32_t size;    // send: the datagram's size; receive: S/G elements
  uint32_t rsvd;
  uint64_t result;
};
static_assert(sizeof(DmaHeader) == 24);
struct DmaSgElement {
  uint64_t addr;
  uint64_t size;
};
static_assert(sizeof(DmaSgElement) == 16);

// Where the device's datagrams go: hostpeer, for the device's context.
class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  // A datagram the guest sent (a hypercall, to context 0, included): its
  // VMCI result.
  virtual int64_t send(std::span<const uint8_t> datagram) = 0;
  // The guest took delivery `delivery_id` (deliver()'s).
  virtual void taken(uint32_t delivery_id) = 0;
};

// How a cause reaches the guest: vector 0, 1 or 2 (with MSI-X each cause
// has its own; otherwise the caller sends everything as vector 0).
class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void raise(uint32_t vector) = 0;
};

class VmciDevice : public DeviceRegisters {
 public:
  // All must outlive this object.
  VmciDevice(GuestMemory& memory, Hypervisor& hypervisor, InterruptLine& line,
             std::shared_ptr<spdlog::logger> log);

  uint64_t read(int bar, uint64_t offset, unsigned size) override;
  void write(int bar, uint64_t offset, uint64_t value, unsigned size) override;
  void reset() override;

  // A datagram for the guest (checked by the caller: a whole datagram).
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram);
  // Doorbells on these notify indexes were rung: their bits are set in the
  // guest's bitmap and NOTIFICATION raised. False if the guest has no
  // bitmap yet (the caller keeps them until it has).
  bool notify_indexes(std::span<const uint32_t> indexes);
  bool has_notify_bitmap() const;

  // What the driver said it uses (CAPS written), for logs and tests.
  uint32_t caps_in_use() const;
  size_t pending_datagrams() const;

 private:
  struct Delivery {
    uint32_t id;
    std::vector<uint8_t> bytes;
  };
  // What a register access does once the lock is released.
  struct After {
    std::optional<std::vector<uint8_t>> send;  // a datagram to send
    bool dma_send = false;                     // its buffer: dma_out_
    uint64_t dma_out = 0;
    std::vector<uint32_t> taken;  // deliveries the guest took
    uint32_t raise = 0;           // causes to raise
  };

  uint32_t register_of(int bar, uint64_t offset, unsigned size) const;
  uint64_t read_register(uint32_t reg, unsigned size, After* after);
  void write_register(uint32_t reg, uint64_t value, unsigned size, After* after);
  void finish(After& after);
  int64_t send_datagram(std::span<const uint8_t> datagram);
  int64_t own_hypercall(std::span<const uint8_t> datagram, bool* handled);

  // Called with mutex_ held.
  void reset_locked();
  void data_out_byte_locked(uint8_t byte, After* after);
  uint8_t data_in_byte_locked(After* after);
  void dma_receive_locked(uint64_t gpa, After* after);
  uint32_t take_icr_locked();
  void raise_locked(uint32_t causes, After* after);
  uint64_t dma_address(uint32_t high, uint64_t low) const { return uint64_t{high} << 32 | low; }

  GuestMemory& memory_;
  Hypervisor& hypervisor_;
  InterruptLine& line_;
  std::shared_ptr<spdlog::logger> log_;

  // Serialises sends: one hypercall at a time, as the VCPU makes them.
  std::mutex send_mutex_;
  mutable std::mutex mutex_;  // guards everything below
  bool interrupts_on_ = false;
  uint32_t icr_ = 0;
  uint32_t imr_ = 0;
  uint32_t caps_in_use_ = 0;
  uint32_t result_ = 0;
  uint32_t data_out_high_ = 0;
  uint32_t data_in_high_ = 0;
  uint32_t page_shift_ = 12;
  std::optional<uint64_t> bitmap_gpa_;
  std::vector<uint8_t> data_out_;  // port mode: the datagram so far
  std::deque<Delivery> deliveries_;
  // Port mode: the bytes of the datagram being read, where, and the stream
  // position (for the 4 KiB rule).
  std::vector<uint8_t> data_in_;
  size_t data_in_at_ = 0;
  uint64_t data_in_position_ = 0;
  bool data_in_padding_ = false;
};

}  // namespace vmci::pcidev
