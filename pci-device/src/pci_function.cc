// pci_function.cc: config space, BAR routing and MSI-X/MSI of the VMCI device.
#include "pci_function.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <vector>

namespace vmci::pcidev {
namespace {

// Config space offsets (PCI Local Bus Specification 3.0, section 6.1).
constexpr uint32_t kCommand = 0x04;
constexpr uint32_t kStatus = 0x06;
constexpr uint32_t kBar0 = 0x10;
constexpr uint32_t kBar1 = 0x14;
constexpr uint32_t kCapabilityPointer = 0x34;
constexpr uint32_t kInterruptLine = 0x3c;

constexpr uint16_t kCommandIo = 0x0001;
constexpr uint16_t kCommandMemory = 0x0002;
constexpr uint16_t kCommandMaster = 0x0004;
constexpr uint16_t kCommandIntxDisable = 0x0400;
constexpr uint16_t kStatusInterrupt = 0x0008;
constexpr uint16_t kStatusCapabilities = 0x0010;

constexpr uint32_t kMsixControl = kMsixCapOffset + 2;
constexpr uint16_t kMsixEnable = 0x8000;
constexpr uint16_t kMsixFunctionMask = 0x4000;
constexpr uint32_t kMsiControl = kMsiCapOffset + 2;
constexpr uint16_t kMsiEnable = 0x0001;
constexpr uint16_t kMsi64Bit = 0x0080;

constexpr uint32_t kBar0Mask = ~(kBar0Size - 1);
constexpr uint32_t kBar1Mask = ~(kBar1Size - 1);

bool valid_size(unsigned size) { return size == 1 || size == 2 || size == 4 || size == 8; }
uint64_t ones(unsigned size) { return size >= 8 ? UINT64_MAX : (uint64_t{1} << (8 * size)) - 1; }

}  // namespace

PciFunction::PciFunction(DeviceRegisters& registers, InterruptSink& interrupts,
                         std::shared_ptr<spdlog::logger> log, bool offer_msix)
    : registers_(registers), interrupts_(interrupts), log_(std::move(log)),
      offer_msix_(offer_msix) {
  auto mask = [this](uint32_t at, uint32_t value, unsigned len) {
    for (unsigned i = 0; i < len; ++i) wmask_[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  mask(kCommand, kCommandIo | kCommandMemory | kCommandMaster | kCommandIntxDisable, 2);
  mask(0x0c, 0xffff, 2);  // cache line size, latency timer
  mask(kBar0, kBar0Mask, 4);
  mask(kBar1, kBar1Mask, 4);
  mask(kInterruptLine, 0xff, 1);
  if (offer_msix_) mask(kMsixControl, kMsixEnable | kMsixFunctionMask, 2);
  mask(kMsiControl, kMsiEnable | 0x0070, 2);  // enable, multiple message enable
  mask(kMsiCapOffset + 4, 0xfffffffc, 4);     // address low (dword aligned)
  mask(kMsiCapOffset + 8, 0xffffffff, 4);     // address high
  mask(kMsiCapOffset + 12, 0xffff, 2);        // data
  std::lock_guard lock(mutex_);
  set_defaults();
}

void PciFunction::set_defaults() {
  config_.fill(0);
  auto put = [this](uint32_t at, uint32_t value, unsigned len) {
    for (unsigned i = 0; i < len; ++i) config_[at + i] = static_cast<uint8_t>(value >> (8 * i));
  };
  put(0x00, kVmwareVendorId, 2);
  put(0x02, kVmciDeviceId, 2);
  put(kStatus, kStatusCapabilities, 2);
  put(0x08, kVmciRevision, 1);
  put(0x09, kVmciClassCode, 3);
  put(kBar0, 0x1, 4);  // I/O space
  put(kBar1, 0x0, 4);  // memory, 32-bit, non-prefetchable
  put(0x2c, kVmwareVendorId, 2);
  put(0x2e, kVmciDeviceId, 2);
  put(kInterruptLine + 1, 0x01, 1);  // interrupt pin A
  if (offer_msix_) {
    put(kCapabilityPointer, kMsixCapOffset, 1);
    put(kMsixCapOffset, 0x11, 1);
    put(kMsixCapOffset + 1, kMsiCapOffset, 1);
    put(kMsixControl, kMsixVectors - 1, 2);
    put(kMsixCapOffset + 4, static_cast<uint32_t>(kMsixTableOffset) | 1, 4);  // BIR 1
    put(kMsixCapOffset + 8, static_cast<uint32_t>(kMsixPbaOffset) | 1, 4);
  } else {
    put(kCapabilityPointer, kMsiCapOffset, 1);
  }
  put(kMsiCapOffset, 0x05, 1);
  put(kMsiCapOffset + 1, 0x00, 1);
  put(kMsiControl, kMsi64Bit, 2);
  for (auto& e : msix_) e = MsixEntry{0, 0, 0, 1};
  msix_pending_ = 0;
}

uint32_t PciFunction::dword(uint32_t at) const {
  uint32_t v;
  std::memcpy(&v, &config_[at], 4);
  return v;
}

uint16_t PciFunction::word(uint32_t at) const {
  uint16_t v;
  std::memcpy(&v, &config_[at], 2);
  return v;
}

uint64_t PciFunction::config_read(uint32_t addr, uint32_t len) {
  if ((len != 1 && len != 2 && len != 4) || addr >= kConfigSpaceSize ||
      len > kConfigSpaceSize - addr) {
    log_->error("pci: config read of {} bytes at {:#x} refused", len, addr);
    return ones(4);
  }
  std::lock_guard lock(mutex_);
  uint32_t value = 0;
  for (uint32_t i = 0; i < len; ++i) value |= uint32_t{config_[addr + i]} << (8 * i);
  return value;
}

void PciFunction::config_write(uint32_t addr, uint32_t value, uint32_t len) {
  if ((len != 1 && len != 2 && len != 4) || addr >= kConfigSpaceSize ||
      len > kConfigSpaceSize - addr) {
    log_->error("pci: config write of {} bytes at {:#x} refused", len, addr);
    return;
  }
  std::vector<std::pair<uint32_t, MsiMessage>> released;
  {
    std::lock_guard lock(mutex_);
    for (uint32_t i = 0; i < len; ++i) {
      uint8_t m = wmask_[addr + i];
      uint8_t b = static_cast<uint8_t>(value >> (8 * i));
      config_[addr + i] = static_cast<uint8_t>((config_[addr + i] & ~m) | (b & m));
    }
    // Clearing the function mask (or enabling MSI-X) releases pending vectors.
    for (uint32_t v = 0; v < kMsixVectors; ++v) {
      if (auto msg = take_pending_locked(v)) released.emplace_back(v, *msg);
    }
  }
  for (const auto& [v, msg] : released) interrupts_.send_msix(v, msg.address, msg.data);
}

uint64_t PciFunction::bar_address(int bar) const {
  std::lock_guard lock(mutex_);
  if (bar == 0) return dword(kBar0) & kBar0Mask;
  if (bar == 1) return dword(kBar1) & kBar1Mask;
  return 0;
}

bool PciFunction::io_decoding() const {
  std::lock_guard lock(mutex_);
  return (word(kCommand) & kCommandIo) != 0;
}

bool PciFunction::memory_decoding() const {
  std::lock_guard lock(mutex_);
  return (word(kCommand) & kCommandMemory) != 0;
}

std::optional<PciFunction::Route> PciFunction::route(uint64_t addr, unsigned size,
                                                     bool memory) const {
  uint64_t base = memory ? (dword(kBar1) & kBar1Mask) : (dword(kBar0) & kBar0Mask);
  uint64_t length = memory ? kBar1Size : kBar0Size;
  if (!valid_size(size) || addr < base || addr - base >= length || size > length - (addr - base)) {
    return std::nullopt;
  }
  return Route{memory ? 1 : 0, addr - base};
}

uint64_t PciFunction::bar_read(uint64_t addr, unsigned size, bool memory) {
  std::optional<Route> r;
  uint64_t value = 0;
  {
    std::lock_guard lock(mutex_);
    r = route(addr, size, memory);
    if (r && r->bar == 1 && r->offset < kMsixAreaSize) {
      if (r->offset + size > kMsixAreaSize) {
        r.reset();
      } else {
        return msix_read(r->offset, size);
      }
    }
  }
  if (!r) {
    log_->error("pci: {} read of {} bytes at {:#x} is in no BAR", memory ? "memory" : "port",
                size, addr);
    return valid_size(size) ? ones(size) : UINT64_MAX;
  }
  value = registers_.read(r->bar, r->offset, size);
  return value & ones(size);
}

void PciFunction::bar_write(uint64_t addr, uint64_t value, unsigned size, bool memory) {
  std::optional<Route> r;
  std::optional<VectorMessage> unmasked;
  bool in_msix_area = false;
  {
    std::lock_guard lock(mutex_);
    r = route(addr, size, memory);
    if (r && r->bar == 1 && r->offset < kMsixAreaSize) {
      if (r->offset + size <= kMsixAreaSize) {
        msix_write(r->offset, value, size, &unmasked);
        in_msix_area = true;
      }
      r.reset();
    }
  }
  if (unmasked) {
    interrupts_.send_msix(unmasked->vector, unmasked->message.address, unmasked->message.data);
  }
  if (in_msix_area) return;
  if (!r) {
    log_->error("pci: {} write of {} bytes at {:#x} is in no BAR", memory ? "memory" : "port",
                size, addr);
    return;
  }
  registers_.write(r->bar, r->offset, value & ones(size), size);
}

uint64_t PciFunction::msix_read(uint64_t offset, unsigned size) const {
  // Byte image of the table and the PBA; anything else in the area reads 0.
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    uint64_t at = offset + i;
    uint8_t b = 0;
    if (at >= kMsixTableOffset && at < kMsixTableOffset + 16 * kMsixVectors) {
      uint64_t rel = at - kMsixTableOffset;
      const MsixEntry& e = msix_[rel / 16];
      uint32_t words[4] = {e.address_low, e.address_high, e.data, e.control};
      b = static_cast<uint8_t>(words[(rel % 16) / 4] >> (8 * (rel % 4)));
    } else if (at >= kMsixPbaOffset && at < kMsixPbaOffset + 8) {
      b = static_cast<uint8_t>(msix_pending_ >> (8 * (at - kMsixPbaOffset)));
    }
    value |= uint64_t{b} << (8 * i);
  }
  return value;
}

void PciFunction::msix_write(uint64_t offset, uint64_t value, unsigned size,
                             std::optional<VectorMessage>* unmasked) {
  for (unsigned i = 0; i < size; ++i) {
    uint64_t at = offset + i;
    if (at < kMsixTableOffset || at >= kMsixTableOffset + 16 * kMsixVectors) continue;  // PBA: read-only
    uint64_t rel = at - kMsixTableOffset;
    MsixEntry& e = msix_[rel / 16];
    uint32_t* words[4] = {&e.address_low, &e.address_high, &e.data, &e.control};
    uint32_t* w = words[(rel % 16) / 4];
    unsigned shift = 8 * (rel % 4);
    *w = (*w & ~(0xffu << shift)) | (static_cast<uint32_t>((value >> (8 * i)) & 0xff) << shift);
    if (w == &e.control) e.control &= 1;  // only the mask bit is defined
  }
  for (uint32_t v = 0; v < kMsixVectors && !*unmasked; ++v) {
    if (auto msg = take_pending_locked(v)) *unmasked = VectorMessage{v, *msg};
  }
}

bool PciFunction::msix_masked_locked(uint32_t vector) const {
  return (word(kMsixControl) & kMsixFunctionMask) != 0 || (msix_[vector].control & 1) != 0;
}

std::optional<MsiMessage> PciFunction::take_pending_locked(uint32_t vector) {
  if ((msix_pending_ & (uint64_t{1} << vector)) == 0) return std::nullopt;
  if ((word(kMsixControl) & kMsixEnable) == 0 || msix_masked_locked(vector)) return std::nullopt;
  msix_pending_ &= ~(uint64_t{1} << vector);
  const MsixEntry& e = msix_[vector];
  return MsiMessage{(uint64_t{e.address_high} << 32) | e.address_low, e.data};
}

InterruptOutcome PciFunction::raise_interrupt(uint32_t vector) {
  MsiMessage msg;
  InterruptOutcome outcome;
  {
    std::lock_guard lock(mutex_);
    if (vector >= kMsixVectors) return InterruptOutcome::kNoSuchVector;
    if ((word(kMsixControl) & kMsixEnable) != 0) {
      if (msix_masked_locked(vector)) {
        msix_pending_ |= uint64_t{1} << vector;
        return InterruptOutcome::kPending;
      }
      const MsixEntry& e = msix_[vector];
      msg = {(uint64_t{e.address_high} << 32) | e.address_low, e.data};
      outcome = InterruptOutcome::kSentMsix;
    } else if ((word(kMsiControl) & kMsiEnable) != 0) {
      // One message (Multiple Message Capable is 0): every vector is it.
      msg = {(uint64_t{dword(kMsiCapOffset + 8)} << 32) | dword(kMsiCapOffset + 4),
             word(kMsiCapOffset + 12)};
      outcome = InterruptOutcome::kSentMsi;
    } else if ((word(kCommand) & kCommandIntxDisable) == 0) {
      uint16_t status = word(kStatus) | kStatusInterrupt;
      std::memcpy(&config_[kStatus], &status, 2);
      outcome = InterruptOutcome::kAssertedIntx;
    } else {
      return InterruptOutcome::kDisabled;
    }
  }
  if (outcome == InterruptOutcome::kAssertedIntx) {
    interrupts_.set_intx(true);
  } else if (outcome == InterruptOutcome::kSentMsix) {
    interrupts_.send_msix(vector, msg.address, msg.data);
  } else {
    interrupts_.send_msi(msg.address, msg.data);
  }
  return outcome;
}

void PciFunction::lower_intx() {
  {
    std::lock_guard lock(mutex_);
    uint16_t status = word(kStatus) & ~kStatusInterrupt;
    std::memcpy(&config_[kStatus], &status, 2);
  }
  interrupts_.set_intx(false);
}

std::optional<MsiMessage> PciFunction::msix_message(uint32_t vector) const {
  std::lock_guard lock(mutex_);
  if (vector >= kMsixVectors || (word(kMsixControl) & kMsixEnable) == 0) return std::nullopt;
  const MsixEntry& e = msix_[vector];
  return MsiMessage{(uint64_t{e.address_high} << 32) | e.address_low, e.data};
}

std::optional<MsiMessage> PciFunction::msi_message() const {
  std::lock_guard lock(mutex_);
  if ((word(kMsiControl) & kMsiEnable) == 0) return std::nullopt;
  return MsiMessage{(uint64_t{dword(kMsiCapOffset + 8)} << 32) | dword(kMsiCapOffset + 4),
                    word(kMsiCapOffset + 12)};
}

bool PciFunction::msix_enabled() const {
  std::lock_guard lock(mutex_);
  return (word(kMsixControl) & kMsixEnable) != 0;
}

bool PciFunction::msi_enabled() const {
  std::lock_guard lock(mutex_);
  return (word(kMsiControl) & kMsiEnable) != 0;
}

void PciFunction::reset() {
  {
    std::lock_guard lock(mutex_);
    set_defaults();
  }
  interrupts_.set_intx(false);
  registers_.reset();
}

}  // namespace vmci::pcidev
