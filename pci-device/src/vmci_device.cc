// vmci_device.cc: the VMCI device's registers and datagram paths (see
// vmci_device.h).
#include "vmci_device.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstddef>
#include <cstring>

#include "vmci/proto/datagram.h"
#include "vmci/vmci_call_defs.h"

namespace vmci::pcidev {
namespace {

constexpr uint32_t kRegisterWindowSize = 0x38;
constexpr uint64_t kMaxDmaArea = 1 << 20;
constexpr uint8_t kNoDatagram = 0xFF;  // an invalid header, byte by byte

uint64_t mask_of(unsigned size) { return size >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * size)) - 1; }

uint32_t aligned_size(size_t size) { return static_cast<uint32_t>((size + 7) & ~size_t{7}); }

}  // namespace

VmciDevice::VmciDevice(GuestMemory& memory, Hypervisor& hypervisor, InterruptLine& line,
                       std::shared_ptr<spdlog::logger> log)
    : memory_(memory), hypervisor_(hypervisor), line_(line), log_(std::move(log)) {}

uint32_t VmciDevice::register_of(int bar, uint64_t offset, unsigned size) const {
  if (bar == 1) {
    if (offset < kMmioRegisterOffset) return UINT32_MAX;
    offset -= kMmioRegisterOffset;
  } else if (bar != 0) {
    return UINT32_MAX;
  }
  // A data port takes any width; every other register is read or written
  // whole, 32 bits at its own offset (a narrower access at that offset is
  // its low bytes).
  if (offset == kRegDataOut || offset == kRegDataIn) return static_cast<uint32_t>(offset);
  if (offset >= kRegisterWindowSize || offset % 4 != 0 || size > 4) return UINT32_MAX;
  return static_cast<uint32_t>(offset);
}

uint64_t VmciDevice::read(int bar, uint64_t offset, unsigned size) {
  const uint32_t reg = register_of(bar, offset, size);
  if (reg == UINT32_MAX) {
    log_->warn("VMCI device: a {}-byte read of BAR{} offset {:#x} is no register; all ones", size,
               bar, offset);
    return mask_of(size);
  }
  After after;
  uint64_t value;
  {
    std::lock_guard lock(mutex_);
    value = read_register(reg, size, &after);
  }
  finish(after);
  return value & mask_of(size);
}

void VmciDevice::write(int bar, uint64_t offset, uint64_t value, unsigned size) {
  const uint32_t reg = register_of(bar, offset, size);
  if (reg == UINT32_MAX) {
    log_->warn("VMCI device: a {}-byte write of {:#x} to BAR{} offset {:#x} is no register; "
               "ignored",
               size, value, bar, offset);
    return;
  }
  std::lock_guard send_lock(send_mutex_);
  After after;
  {
    std::lock_guard lock(mutex_);
    write_register(reg, value & mask_of(size), size, &after);
  }
  finish(after);
}

void VmciDevice::reset() {
  std::vector<uint32_t> taken;
  {
    std::lock_guard lock(mutex_);
    for (const Delivery& d : deliveries_) taken.push_back(d.id);
    reset_locked();
  }
  for (uint32_t id : taken) hypervisor_.taken(id);
}

void VmciDevice::reset_locked() {
  interrupts_on_ = false;
  icr_ = 0;
  imr_ = 0;
  caps_in_use_ = 0;
  result_ = 0;
  data_out_high_ = 0;
  data_in_high_ = 0;
  page_shift_ = 12;
  bitmap_gpa_.reset();
  data_out_.clear();
  deliveries_.clear();
  data_in_.clear();
  data_in_at_ = 0;
  data_in_position_ = 0;
  data_in_padding_ = false;
}

uint64_t VmciDevice::read_register(uint32_t reg, unsigned size, After* after) {
  switch (reg) {
    case kRegStatus:
      return interrupts_on_ ? 1 : 0;
    case kRegIcr:
      return take_icr_locked();
    case kRegImr:
      return imr_;
    case kRegCaps:
      return kCapsOffered;
    case kRegResultLow:
      return result_;
    case kRegDataIn: {
      uint64_t value = 0;
      for (unsigned i = 0; i < size; ++i) {
        value |= uint64_t{data_in_byte_locked(after)} << (8 * i);
      }
      return value;
    }
    case kRegDataOutHigh:
      return data_out_high_;
    case kRegDataInHigh:
      return data_in_high_;
    case kRegGuestPageShift:
      return page_shift_;
    default:  // CONTROL, DATA_OUT, RESULT_HIGH and the DMA triggers read 0
      return 0;
  }
}

void VmciDevice::write_register(uint32_t reg, uint64_t value, unsigned size, After* after) {
  switch (reg) {
    case kRegControl:
      if (value & kControlReset) {
        for (const Delivery& d : deliveries_) after->taken.push_back(d.id);
        reset_locked();
      }
      if (value & kControlIntEnable) {
        interrupts_on_ = true;
        raise_locked(0, after);  // what is already pending and enabled
      }
      if (value & kControlIntDisable) interrupts_on_ = false;
      return;
    case kRegImr:
      imr_ = static_cast<uint32_t>(value) &
             (kCauseDatagram | kCauseNotification | kCauseDmaDatagram);
      raise_locked(0, after);
      return;
    case kRegCaps:
      if ((value & ~uint64_t{kCapsOffered}) != 0) {
        log_->warn("VMCI device: the driver asked for capabilities {:#x}, beyond those offered "
                   "({:#x}); using the offered ones",
                   value, kCapsOffered);
      }
      caps_in_use_ = static_cast<uint32_t>(value) & kCapsOffered;
      log_->info("VMCI device: the driver uses capabilities {:#x}", caps_in_use_);
      return;
    case kRegDataOut:
      for (unsigned i = 0; i < size; ++i) {
        data_out_byte_locked(static_cast<uint8_t>(value >> (8 * i)), after);
      }
      return;
    case kRegDataOutLow:
      after->dma_send = true;
      after->dma_out = dma_address(data_out_high_, value);
      return;
    case kRegDataOutHigh:
      data_out_high_ = static_cast<uint32_t>(value);
      return;
    case kRegDataInLow:
      dma_receive_locked(dma_address(data_in_high_, value), after);
      return;
    case kRegDataInHigh:
      data_in_high_ = static_cast<uint32_t>(value);
      return;
    case kRegGuestPageShift:
      if (value != 12) {
        log_->warn("VMCI device: the driver's page shift {} is not supported (4 KiB pages only)",
                   value);
      }
      page_shift_ = static_cast<uint32_t>(value);
      return;
    default:
      log_->warn("VMCI device: a write of {:#x} to read-only register {:#x} ignored", value, reg);
      return;
  }
}

void VmciDevice::data_out_byte_locked(uint8_t byte, After* after) {
  data_out_.push_back(byte);
  if (data_out_.size() < sizeof(vmci_datagram)) return;
  vmci_datagram header;
  std::memcpy(&header, data_out_.data(), sizeof header);
  if (header.payload_size > VMCI_MAX_DG_PAYLOAD_SIZE) {
    log_->warn("VMCI device: a datagram written to DATA_OUT claims {} payload bytes (at most "
               "{}); refused",
               header.payload_size, VMCI_MAX_DG_PAYLOAD_SIZE);
    data_out_.clear();
    result_ = static_cast<uint32_t>(VMCI_ERROR_INVALID_ARGS);
    return;
  }
  if (data_out_.size() < VMCI_DG_SIZE(&header)) return;
  after->send = std::move(data_out_);
  data_out_.clear();
}

uint8_t VmciDevice::data_in_byte_locked(After* after) {
  if (data_in_at_ == data_in_.size() && !deliveries_.empty() &&
      (!data_in_padding_ || data_in_position_ % 4096 == 0)) {
    Delivery& next = deliveries_.front();
    data_in_ = std::move(next.bytes);
    data_in_.resize(aligned_size(data_in_.size()), 0);
    data_in_at_ = 0;
    data_in_padding_ = false;
    after->taken.push_back(next.id);
    deliveries_.pop_front();
  }
  ++data_in_position_;
  if (data_in_at_ < data_in_.size()) return data_in_[data_in_at_++];
  data_in_padding_ = true;
  return kNoDatagram;
}

void VmciDevice::dma_receive_locked(uint64_t gpa, After* after) {
  DmaHeader header;
  DmaSgElement area;
  if (!memory_.read(gpa, &header, sizeof header) ||
      !memory_.read(gpa + sizeof header, &area, sizeof area)) {
    log_->warn("VMCI device: DMA receive buffer at {:#x} is outside RAM; ignored", gpa);
    return;
  }
  if (header.opcode != 1 || header.size < 1 || area.size < sizeof(vmci_datagram) ||
      area.size > kMaxDmaArea || !memory_.translate(area.addr, area.size)) {
    log_->warn("VMCI device: DMA receive header at {:#x} (opcode {}, {} elements, area {:#x} + "
               "{}) refused",
               gpa, header.opcode, header.size, area.addr, area.size);
    return;
  }
  auto range = memory_.translate(area.addr, area.size);
  uint8_t* out = range->data();
  uint64_t at = 0;
  while (!deliveries_.empty()) {
    Delivery& d = deliveries_.front();
    const uint32_t size = aligned_size(d.bytes.size());
    if (size > area.size) {
      log_->warn("VMCI device: a {}-byte datagram does not fit the guest's {}-byte receive "
                 "area; dropped",
                 d.bytes.size(), area.size);
    } else if (at + size > area.size) {
      break;
    } else {
      std::memcpy(out + at, d.bytes.data(), d.bytes.size());
      std::memset(out + at + d.bytes.size(), 0, size - d.bytes.size());
      at += size;
    }
    after->taken.push_back(d.id);
    deliveries_.pop_front();
  }
  if (area.size - at >= sizeof(vmci_datagram)) {
    std::memset(out + at, kNoDatagram, sizeof(vmci_datagram));
  }
  const uint32_t busy = 1;
  memory_.write(gpa + offsetof(DmaHeader, busy), &busy, sizeof busy);
  raise_locked(kCauseDmaDatagram | (deliveries_.empty() ? 0 : kCauseDatagram), after);
}

uint32_t VmciDevice::take_icr_locked() {
  const uint32_t icr = icr_ | (deliveries_.empty() ? 0 : kCauseDatagram);
  icr_ = 0;
  return icr;
}

void VmciDevice::raise_locked(uint32_t causes, After* after) {
  icr_ |= causes;
  if (!deliveries_.empty()) icr_ |= kCauseDatagram;
  if (interrupts_on_) after->raise |= (causes == 0 ? icr_ : causes) & imr_;
}

void VmciDevice::finish(After& after) {
  if (after.dma_send) {
    DmaHeader header;
    int64_t result = VMCI_ERROR_INVALID_ARGS;
    std::vector<uint8_t> datagram;
    if (!memory_.read(after.dma_out, &header, sizeof header)) {
      log_->warn("VMCI device: DMA send buffer at {:#x} is outside RAM; ignored", after.dma_out);
    } else if (header.opcode != 0 || header.size < sizeof(vmci_datagram) ||
               header.size > VMCI_MAX_DG_SIZE) {
      log_->warn("VMCI device: DMA send header at {:#x} (opcode {}, size {}) refused",
                 after.dma_out, header.opcode, header.size);
    } else {
      datagram.resize(header.size);
      if (!memory_.read(after.dma_out + sizeof header, datagram.data(), datagram.size())) {
        log_->warn("VMCI device: DMA send datagram at {:#x} is outside RAM; refused",
                   after.dma_out);
      } else {
        result = send_datagram(datagram);
      }
    }
    {
      std::lock_guard lock(mutex_);
      result_ = static_cast<uint32_t>(result);
    }
    const uint64_t result_field = static_cast<uint64_t>(result);
    memory_.write(after.dma_out + offsetof(DmaHeader, result), &result_field,
                  sizeof result_field);
    const uint32_t not_busy = 0;
    memory_.write(after.dma_out + offsetof(DmaHeader, busy), &not_busy, sizeof not_busy);
  }
  if (after.send) {
    const int64_t result = send_datagram(*after.send);
    std::lock_guard lock(mutex_);
    result_ = static_cast<uint32_t>(result);
  }
  for (uint32_t id : after.taken) hypervisor_.taken(id);
  for (uint32_t vector = 0; vector < 3; ++vector) {
    if (after.raise & (1u << vector)) line_.raise(vector);
  }
}

int64_t VmciDevice::send_datagram(std::span<const uint8_t> datagram) {
  if (datagram.size() < sizeof(vmci_datagram)) return VMCI_ERROR_INVALID_ARGS;
  vmci_datagram header;
  std::memcpy(&header, datagram.data(), sizeof header);
  if (VMCI_DG_SIZE(&header) != datagram.size()) {
    log_->warn("VMCI device: a datagram of {} bytes says {} payload bytes; refused",
               datagram.size(), header.payload_size);
    return VMCI_ERROR_INVALID_ARGS;
  }
  bool handled = false;
  const int64_t own = own_hypercall(datagram, &handled);
  if (handled) return own;
  int64_t result = hypervisor_.send(datagram);
  if (header.dst.context == VMCI_HYPERVISOR_CONTEXT_ID &&
      header.dst.resource == VMCI_RESOURCES_QUERY && result >= 0 &&
      datagram.size() >= sizeof(vmci_datagram) + sizeof(uint32_t)) {
    // This device implements VMCI_SET_NOTIFY_BITMAP itself.
    uint32_t count;
    std::memcpy(&count, datagram.data() + sizeof(vmci_datagram), sizeof count);
    const size_t listed = (datagram.size() - sizeof(vmci_datagram) - sizeof count) / 4;
    for (uint32_t i = 0; i < count && i < listed && i < 32; ++i) {
      uint32_t resource;
      std::memcpy(&resource, datagram.data() + sizeof(vmci_datagram) + 4 + 4 * i, 4);
      if (resource == VMCI_SET_NOTIFY_BITMAP) result |= int64_t{1} << i;
    }
  }
  return result;
}

int64_t VmciDevice::own_hypercall(std::span<const uint8_t> datagram, bool* handled) {
  vmci_datagram header;
  std::memcpy(&header, datagram.data(), sizeof header);
  if (header.dst.context != VMCI_HYPERVISOR_CONTEXT_ID ||
      header.dst.resource != VMCI_SET_NOTIFY_BITMAP) {
    return 0;
  }
  *handled = true;
  std::lock_guard lock(mutex_);
  const bool ppn64 = (caps_in_use_ & kCapsPpn64) != 0;
  const size_t need = ppn64 ? 8 : 4;
  if (header.payload_size < need) {
    log_->warn("VMCI device: SET_NOTIFY_BITMAP with {} payload bytes refused", header.payload_size);
    return VMCI_ERROR_INVALID_ARGS;
  }
  uint64_t ppn = 0;
  std::memcpy(&ppn, datagram.data() + sizeof header, need);
  const uint64_t gpa = ppn << 12;
  if ((ppn >> 52) != 0 || !memory_.translate(gpa, 4096)) {
    log_->warn("VMCI device: SET_NOTIFY_BITMAP to page {:#x}, outside RAM; refused", ppn);
    return VMCI_ERROR_INVALID_ARGS;
  }
  bitmap_gpa_ = gpa;
  log_->info("VMCI device: the notify bitmap is guest page {:#x}", ppn);
  return VMCI_SUCCESS;
}

void VmciDevice::deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) {
  After after;
  {
    std::lock_guard lock(mutex_);
    const bool was_empty = deliveries_.empty();
    deliveries_.push_back({delivery_id, std::move(datagram)});
    if (was_empty) raise_locked(kCauseDatagram, &after);
  }
  finish(after);
}

bool VmciDevice::notify_indexes(std::span<const uint32_t> indexes) {
  After after;
  {
    std::lock_guard lock(mutex_);
    if (!bitmap_gpa_) return false;
    auto bitmap = memory_.translate(*bitmap_gpa_, 4096);
    if (!bitmap) return false;  // RAM changed under it: the guest registers again
    bool any = false;
    for (uint32_t index : indexes) {
      if (index >= 4096) continue;
      // The guest clears the bit as it takes it; both sides touch the byte.
      std::atomic_ref<uint8_t>(bitmap->data()[index]).fetch_or(1);
      any = true;
    }
    if (any) raise_locked(kCauseNotification, &after);
  }
  finish(after);
  return true;
}

bool VmciDevice::has_notify_bitmap() const {
  std::lock_guard lock(mutex_);
  return bitmap_gpa_.has_value();
}

uint32_t VmciDevice::caps_in_use() const {
  std::lock_guard lock(mutex_);
  return caps_in_use_;
}

size_t VmciDevice::pending_datagrams() const {
  std::lock_guard lock(mutex_);
  return deliveries_.size();
}

}  // namespace vmci::pcidev
