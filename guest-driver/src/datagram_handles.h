// datagram_handles.h: the endpoint's datagram handles and their callbacks.
//
// For a guest this is the whole resource table, with FreeBSD's rules (one
// table, a handle whose context is VMCI_INVALID_ID matches any context,
// dynamic ids from 1024): datagram handles with their callbacks, and the
// handles of the guest's doorbells (claimed here, so that a doorbell and a
// datagram handle never share a handle, item 35). For a host connection the
// handles live in hostpeer and this only maps them to their callbacks.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "vmci/endpoint.h"

namespace vmci::guest::internal {

class DatagramHandles {
 public:
  // Entries a guest may hold (its datagram handles and claimed doorbell
  // handles); beyond them create() and claim() are VMCI_ERROR_NO_RESOURCES.
  static constexpr size_t kMaxGuestEntries = 65536;

  struct Entry {
    vmci_handle handle;
    uint32_t flags;
    uint32_t priv_flags;
    DatagramCallback callback;  // empty for a claimed (non-datagram) handle
  };

  // Guest handle creation (spec §3.4 steps 3-6, after argument checks): a
  // dynamic id when resource is VMCI_INVALID_ID; VMCI_ERROR_DUPLICATE_ENTRY
  // if the handle exists; VMCI_ERROR_NO_HANDLE when ids are exhausted;
  // VMCI_ERROR_NO_RESOURCES when kMaxGuestEntries are held.
  int create(vmci_id context, vmci_id resource, uint32_t flags, uint32_t priv_flags,
             DatagramCallback callback, vmci_handle* out);
  // Claims a handle for another kind of resource (a doorbell), by the same
  // rules as create(); it receives no datagrams. Given back with release().
  int claim(vmci_id context, vmci_id resource, vmci_handle* out);
  // VMCI_ERROR_NOT_FOUND unless `exact` was claimed.
  int release(vmci_handle exact);
  // Records a handle that hostpeer created (host connections).
  void insert(vmci_handle handle, uint32_t flags, uint32_t priv_flags, DatagramCallback callback);
  // The datagram handle that a datagram to or from `h` resolves to, or null.
  std::shared_ptr<const Entry> lookup(vmci_handle h) const;
  // Removes the datagram handle that `h` finds (FreeBSD's lookup: a stored
  // context of VMCI_INVALID_ID matches any context, so an any-context
  // handle is found by (own context, resource) too); VMCI_ERROR_NOT_FOUND if
  // none. Unless `from_callback`, waits until no callback of it is running.
  int remove(vmci_handle h, bool from_callback);

  // Marks a callback of `entry` as running until finish_callback().
  void start_callback(const std::shared_ptr<const Entry>& entry);
  void finish_callback();

 private:
  std::shared_ptr<const Entry> lookup_locked(vmci_handle h) const;
  bool exists_locked(vmci_handle h) const;
  // Adds an entry under create()'s rules for the resource id.
  int add_locked(vmci_id context, vmci_id resource, uint32_t flags, uint32_t priv_flags,
                 DatagramCallback callback, vmci_handle* out);

  mutable std::mutex mutex_;
  std::condition_variable callback_done_;
  std::multimap<vmci_id, std::shared_ptr<const Entry>> by_resource_;
  std::shared_ptr<const Entry> running_;
  vmci_id next_resource_ = VMCI_RESERVED_RESOURCE_ID_MAX + 1;
};

}  // namespace vmci::guest::internal
