// proxy_device.cc: proxy messages to the PCI function, guest memory, irqfds.
#include "proxy_device.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmci::pcidev {

void IrqfdInterruptSink::set_irqfds(SetIrqfd&& fds) {
  std::lock_guard lock(mutex_);
  fds_ = std::move(fds);
}

bool IrqfdInterruptSink::has_irqfd() const {
  std::lock_guard lock(mutex_);
  return static_cast<bool>(fds_.irq);
}

void IrqfdInterruptSink::send_msi(uint64_t address, uint32_t data) {
  if (undeliverable_msis_.fetch_add(1) == 0) {
    log_->warn("pci: MSI {:#x}/{:#x} cannot be delivered: QEMU 7.2's proxy device has no MSI path",
               address, data);
  }
}

void IrqfdInterruptSink::set_intx(bool asserted) {
  if (!asserted) return;  // the level falls when the guest EOIs (KVM's resampler)
  std::lock_guard lock(mutex_);
  if (!fds_.irq) return;
  uint64_t one = 1;
  if (::write(fds_.irq.get(), &one, sizeof(one)) != sizeof(one)) {
    log_->error("pci: irqfd write: {}", std::strerror(errno));
    return;
  }
  intx_signals_.fetch_add(1);
}

uint64_t ProxyDevice::config_read(const ConfigRead& access) {
  return pci_.config_read(access.addr, access.len);
}

void ProxyDevice::config_write(const ConfigWrite& access) {
  pci_.config_write(access.addr, access.value, access.len);
}

uint64_t ProxyDevice::bar_read(const BarRead& access) {
  return pci_.bar_read(access.addr, access.size, access.memory);
}

void ProxyDevice::bar_write(const BarWrite& access) {
  pci_.bar_write(access.addr, access.value, access.size, access.memory);
}

void ProxyDevice::sync_sysmem(SyncSysmem&& sysmem) {
  size_t count = sysmem.regions.size();
  MemoryStatus status = memory_.replace(std::move(sysmem.regions));
  if (!status.ok) {
    log_->error("pci: SYNC_SYSMEM refused, the previous map stays: {}", status.message);
    return;
  }
  log_->debug("pci: guest memory: {} regions", count);
}

void ProxyDevice::set_irqfd(SetIrqfd&& irqfd) { irq_.set_irqfds(std::move(irqfd)); }

void ProxyDevice::device_reset() { pci_.reset(); }

}  // namespace vmci::pcidev
