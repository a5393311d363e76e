// doorbell_hypercalls.h: the VMCI_DOORBELL_LINK, _UNLINK and _NOTIFY
// hypercall messages (spec §4.4), built by a guest and checked by hostpeer.
// A notify message carries no privilege flags: a guest's are not sent.
//
//   auto link = make_doorbell_link_message(handle, 3);
//   vmci_handle h;
//   uint64_t index;
//   if (parse_doorbell_link_message(link, &h, &index) == VMCI_SUCCESS) ...
#pragma once

#include <cstdint>
#include <span>

#include "vmci/proto/datagram.h"

namespace vmci::proto {

// dst (0, VMCI_DOORBELL_LINK), src VMCI_ANON_SRC_HANDLE; 40 bytes.
Bytes make_doorbell_link_message(vmci_handle handle, uint64_t notify_index);
// VMCI_DOORBELL_UNLINK or VMCI_DOORBELL_NOTIFY (`resource`): 32 bytes.
Bytes make_doorbell_message(uint32_t resource, vmci_handle handle);

// VMCI_SUCCESS, or VMCI_ERROR_INVALID_ARGS for a message of the wrong size.
int parse_doorbell_link_message(std::span<const uint8_t> dg, vmci_handle* handle,
                                uint64_t* notify_index);
int parse_doorbell_message(std::span<const uint8_t> dg, vmci_handle* handle);

// vmci_doorbell_create's first checks (spec §5.1): a missing out-pointer or
// callback, flags other than VMCI_FLAG_DELAYED_CB, or privilege flags
// outside 0x3 are VMCI_ERROR_INVALID_ARGS.
int check_doorbell_create(bool have_handle, bool have_callback, uint32_t flags,
                          uint32_t priv_flags);

}  // namespace vmci::proto
