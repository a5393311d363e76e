// ivshmem_interrupt_sink.h: the VMCI device's MSI-X vectors delivered
// through QEMU's ivshmem-doorbell device, under TCG.
//
// How an interrupt gets to the guest: PciFunction::raise_interrupt(k) ->
// send_msix(k, ...) here -> IvshmemServer::notify(k) writes the eventfd of
// ivshmem's vector k -> QEMU's main loop calls msix_notify on ivshmem's
// vector k -> ivshmem sends the message in ITS MSI-X table entry k. That
// entry holds the VMCI device's vector k message only because the guest's
// bridge (pci-device/guest/vmci-irq-bridge) copied it there, unmasked it
// and enabled ivshmem's MSI-X and bus mastering.
//
// The bridge record: after copying, the bridge writes what it copied into
// ivshmem's shared memory (BAR2), which is IvshmemServer::shared_memory()
// here. Layout (little-endian u32 words, at offset 0):
//   0x00  kBridgeRecordMagic, written last (0 while the bridge writes)
//   0x04  number of vectors copied
//   0x08  the VMCI device's BAR1 guest address the bridge read (diagnostic)
//   0x0c  0
//   0x10 + 16*k: vector k: address low, address high, data, 1 if copied
// send_msix compares the message with the record's vector k:
//   - no record (the bridge has not run):   rung anyway, counted `unbridged`
//     (ivshmem keeps it pending if its entry is masked, drops it while its
//     MSI-X is off);
//   - a different message (the guest kernel rewrote the VMCI entry after the
//     bridge ran, e.g. an affinity change): rung anyway, counted `stale` and
//     warned once per message: the guest gets the old message; re-run the
//     bridge. Rung rather than dropped: an old vector may still be handled,
//     a dropped interrupt never is.
//
// MSI (not MSI-X) and INTx have no route here (the bridge copies MSI-X
// entries only; ivshmem-doorbell raises nothing but MSI-X): counted and
// warned once. Linux's vmw_vmci uses MSI-X with this device.
//
// Thread safety: all methods may be called from any thread.
//
//   auto server = IvshmemServer::listen(path, {kMsixVectors, 4096}, log, &error);
//   IvshmemInterruptSink irq(*server, log);
//   PciFunction pci(model, irq, log);
//   pci.raise_interrupt(2);   // ivshmem's vector 2 fires in the guest
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "ivshmem_server.h"
#include "pci_function.h"

namespace vmci::pcidev {

constexpr uint32_t kBridgeRecordMagic = 0x56434952;  // "RICV" as bytes
constexpr uint32_t kBridgeRecordEntriesOffset = 0x10;

struct BridgeRecord {
  uint32_t vectors = 0;
  uint32_t vmci_bar1 = 0;
  std::array<std::optional<MsiMessage>, kMsixVectors> entries;  // copied ones
};

// The record in shm, or nullopt without the magic. shm is at least 4096
// bytes, page-aligned (IvshmemServer's); the guest may write it meanwhile,
// so a torn read is possible and only ever a diagnostic.
std::optional<BridgeRecord> read_bridge_record(std::span<const uint8_t> shm);

class IvshmemInterruptSink : public InterruptSink {
 public:
  // server must outlive this object.
  IvshmemInterruptSink(IvshmemServer& server, std::shared_ptr<spdlog::logger> log)
      : server_(server), log_(std::move(log)) {}

  void send_msix(uint32_t vector, uint64_t address, uint32_t data) override;
  void send_msi(uint64_t address, uint32_t data) override;
  void set_intx(bool asserted) override;

  uint64_t delivered() const { return delivered_.load(); }    // eventfd written
  uint64_t undelivered() const { return undelivered_.load(); }  // no QEMU, or no route
  uint64_t unbridged() const { return unbridged_.load(); }
  uint64_t stale() const { return stale_.load(); }

 private:
  IvshmemServer& server_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::array<std::optional<MsiMessage>, kMsixVectors> warned_stale_;  // guarded by mutex_
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> undelivered_{0};
  std::atomic<uint64_t> unbridged_{0};
  std::atomic<uint64_t> stale_{0};
  std::atomic<bool> warned_no_route_{false};
  std::atomic<bool> warned_unbridged_{false};
};

}  // namespace vmci::pcidev
