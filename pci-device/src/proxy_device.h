// proxy_device.h: the VMCI PCI function behind QEMU's proxy device: what
// each proxy message does, and how interrupts reach QEMU.
//
// ProxyDevice is the ProxyMessageHandler that ProxyLink::serve calls:
// config and BAR requests go to the PciFunction, SYNC_SYSMEM replaces the
// GuestMemory map, DEVICE_RESET resets the function (and the model through
// it), SET_IRQFD gives IrqfdInterruptSink its eventfds.
//
// What QEMU 7.2 can deliver (Debian 1:7.2+dfsg-7+deb12u18; see
// pci-device/README.md for the evidence):
//   - INTx through the irqfd: only under KVM (hw/remote/proxy.c hands the
//     fd to KVM_IRQFD; under TCG nothing reads it).
//   - MSI and MSI-X: the proxy has no path at all (it implements neither
//     and the device cannot write the APIC's address range; the RAM it
//     maps is not the APIC).
// So under TCG send_msi can only be counted; another delivery path (a
// guest that polls, or a second QEMU device whose eventfd QEMU does read,
// reprogrammed with the message) plugs in as another InterruptSink.
//
//   GuestMemory ram;
//   IrqfdInterruptSink irq(log);
//   PciFunction pci(model, irq, log);
//   ProxyDevice device(pci, ram, irq, log);
//   ProxyLink link(std::move(socket), log);
//   link.serve(device);
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "guest_memory.h"
#include "pci_function.h"
#include "proxy_link.h"

namespace vmci::pcidev {

// Interrupts through what SET_IRQFD gave: INTx level as the irqfd (an
// eventfd write asserts; KVM's resampler re-asserts while the level is
// high). MSI messages are counted and logged once: QEMU 7.2's proxy cannot
// deliver them.
class IrqfdInterruptSink : public InterruptSink {
 public:
  explicit IrqfdInterruptSink(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}
  void set_irqfds(SetIrqfd&& fds);
  void send_msi(uint64_t address, uint32_t data) override;
  void set_intx(bool asserted) override;

  uint64_t undeliverable_msis() const { return undeliverable_msis_.load(); }
  uint64_t intx_signals() const { return intx_signals_.load(); }
  bool has_irqfd() const;

 private:
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mutex_;
  SetIrqfd fds_;  // guarded by mutex_
  std::atomic<uint64_t> undeliverable_msis_{0};
  std::atomic<uint64_t> intx_signals_{0};
};

class ProxyDevice : public ProxyMessageHandler {
 public:
  // All must outlive this object.
  ProxyDevice(PciFunction& pci, GuestMemory& memory, IrqfdInterruptSink& irq,
              std::shared_ptr<spdlog::logger> log)
      : pci_(pci), memory_(memory), irq_(irq), log_(std::move(log)) {}

  uint64_t config_read(const ConfigRead& access) override;
  void config_write(const ConfigWrite& access) override;
  uint64_t bar_read(const BarRead& access) override;
  void bar_write(const BarWrite& access) override;
  void sync_sysmem(SyncSysmem&& sysmem) override;
  void set_irqfd(SetIrqfd&& irqfd) override;
  void device_reset() override;

 private:
  PciFunction& pci_;
  GuestMemory& memory_;
  IrqfdInterruptSink& irq_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace vmci::pcidev
