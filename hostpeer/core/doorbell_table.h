// doorbell_table.h: which doorbell rings where (spec §5.2). Each doorbell is
// a handle bound to a notify-bitmap index of the connection that owns it:
// a guest links one with the VMCI_DOORBELL_LINK hypercall, a host
// connection creates one directly. A notification that the rules allow
// comes out as (owner, index): the delivery layer sets that byte of the
// owner's bitmap, which is also what coalesces repeated rings (§5.4).
// No memory, no I/O; not thread-safe: the hypervisor core serialises calls.
//
//   DoorbellTable table(limits);
//   table.link({vm_peer, 16, 0}, VMCI_MAKE_HANDLE(16, 1024), /*index*/ 0, 0);
//   auto ring = table.notify({VMCI_HOST_CONTEXT_ID, 0, 0}, VMCI_MAKE_HANDLE(16, 1024), 0u);
//   // ring.status == VMCI_SUCCESS, ring.peer == vm_peer, ring.index == 0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "vmci/host/limits.h"
#include "vmci/vmci_defs.h"

namespace vmci::host {

// The connection a doorbell belongs to.
struct DoorbellOwner {
  uint64_t peer;              // the connection (PeerId)
  vmci_id cid;                // a guest's id, or 2 for host connections
  uint32_t context_priv = 0;  // a guest context's privileges
};

// Who rings: a context, with the flags its caller passed (only a host
// caller's non-zero flags count, §5.2).
struct DoorbellNotifier {
  vmci_id cid;
  uint32_t context_priv = 0;
  uint32_t caller_priv = 0;
};

// Where a notification goes.
struct DoorbellRing {
  int status;  // VMCI_SUCCESS, or why it may not ring
  uint64_t peer = 0;
  uint64_t index = 0;
};

// Notify-bitmap indices run 0..4095 (one page, a byte per index, §4.3).
inline constexpr uint64_t kNotifyIndexCount = 4096;

class DoorbellTable {
 public:
  explicit DoorbellTable(const Limits& limits) : limits_(limits) {}

  // Binds `handle` to the owner's notify `index`. A guest's doorbell is in
  // its own context; a host connection's in context 2 with its own
  // privileges (`priv_flags`, ignored for guests: their context's count).
  // VMCI_ERROR_INVALID_ARGS, VMCI_ERROR_NO_ACCESS (another context's
  // handle), VMCI_ERROR_DUPLICATE_ENTRY or VMCI_ERROR_NO_RESOURCES.
  int link(const DoorbellOwner& owner, vmci_handle handle, uint64_t index, uint32_t priv_flags);
  // VMCI_ERROR_NOT_FOUND unless the owner's connection linked `handle`.
  int unlink(const DoorbellOwner& owner, vmci_handle handle);
  // The connection went away: its doorbells cease to exist (no events, §8).
  void unlink_all(uint64_t peer);

  // The rules of §5.2 for ringing `dst`. `dst_context_priv` is the
  // privileges of the context `dst` lives in, or nullopt if there is no
  // such context.
  DoorbellRing notify(const DoorbellNotifier& from, vmci_handle dst,
                      std::optional<uint32_t> dst_context_priv) const;

  // A ring that notify() allowed was passed on (counted for introspection).
  void count_ring(vmci_handle handle);

  size_t count() const { return doorbells_.size(); }
  bool contains(vmci_handle handle) const;
  size_t count_of(uint64_t peer) const;

  struct Entry {
    vmci_handle handle;
    DoorbellOwner owner;
    uint64_t index;
    uint32_t priv_flags;
    uint64_t rings;  // passed on since it was linked
  };
  std::vector<Entry> list() const;

 private:
  struct Doorbell {
    DoorbellOwner owner;
    uint64_t index;
    uint32_t priv_flags;  // host doorbells: their own; guests: unused
    uint64_t rings = 0;
  };
  const Limits limits_;
  std::map<uint64_t, Doorbell> doorbells_;  // by handle key
};

}  // namespace vmci::host
