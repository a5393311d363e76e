// ivshmem_interrupt_sink.cc: MSI-X vector k -> ivshmem vector k's eventfd.
#include "ivshmem_interrupt_sink.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <string>

namespace vmci::pcidev {
namespace {

uint32_t load_word(std::span<const uint8_t> shm, size_t offset) {
  // The guest writes this memory concurrently: read each word atomically.
  auto* word = reinterpret_cast<uint32_t*>(const_cast<uint8_t*>(shm.data() + offset));
  return std::atomic_ref<uint32_t>(*word).load(std::memory_order_acquire);
}

}  // namespace

std::optional<BridgeRecord> read_bridge_record(std::span<const uint8_t> shm) {
  size_t needed = kBridgeRecordEntriesOffset + 16 * kMsixVectors;
  if (shm.size() < needed) return std::nullopt;
  if (load_word(shm, 0) != kBridgeRecordMagic) return std::nullopt;
  BridgeRecord record;
  record.vectors = load_word(shm, 4);
  record.vmci_bar1 = load_word(shm, 8);
  for (uint32_t k = 0; k < kMsixVectors; ++k) {
    size_t at = kBridgeRecordEntriesOffset + 16 * k;
    if ((load_word(shm, at + 12) & 1) == 0) continue;
    record.entries[k] =
        MsiMessage{(uint64_t{load_word(shm, at + 4)} << 32) | load_word(shm, at), load_word(shm, at + 8)};
  }
  return record;
}

void IvshmemInterruptSink::send_msix(uint32_t vector, uint64_t address, uint32_t data) {
  std::optional<BridgeRecord> record = read_bridge_record(server_.shared_memory());
  if (!record) {
    unbridged_.fetch_add(1);
    if (!warned_unbridged_.exchange(true)) {
      log_->warn("ivshmem: MSI-X vector {} raised before the guest's vmci-irq-bridge ran", vector);
    }
  } else if (vector >= kMsixVectors || !record->entries[vector] ||
             record->entries[vector]->address != address || record->entries[vector]->data != data) {
    stale_.fetch_add(1);
    std::lock_guard lock(mutex_);
    if (vector < kMsixVectors) {
      auto& warned = warned_stale_[vector];
      if (!warned || warned->address != address || warned->data != data) {
        warned = MsiMessage{address, data};
        log_->warn(
            "ivshmem: MSI-X vector {} is now {:#x}/{:#x}, the bridge copied {}: re-run "
            "vmci-irq-bridge in the guest",
            vector, address, data,
            record->entries[vector]
                ? fmt::format("{:#x}/{:#x}", record->entries[vector]->address,
                              record->entries[vector]->data)
                : std::string("nothing"));
      }
    }
  }
  if (server_.notify(vector)) {
    delivered_.fetch_add(1);
  } else {
    undelivered_.fetch_add(1);
  }
}

void IvshmemInterruptSink::send_msi(uint64_t address, uint32_t data) {
  undelivered_.fetch_add(1);
  if (!warned_no_route_.exchange(true)) {
    log_->warn("ivshmem: MSI {:#x}/{:#x} has no route (the bridge copies MSI-X entries only)",
               address, data);
  }
}

void IvshmemInterruptSink::set_intx(bool asserted) {
  if (!asserted) return;
  undelivered_.fetch_add(1);
  if (!warned_no_route_.exchange(true)) {
    log_->warn("ivshmem: INTx has no route (ivshmem-doorbell raises MSI-X only)");
  }
}

}  // namespace vmci::pcidev
