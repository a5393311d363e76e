/* The C definition headers compile as strict C99 and give the same layouts. */
#include <stddef.h>

#include "vmci/vmci_call_defs.h"

size_t vmci_c_sizeof_datagram(void);
size_t vmci_c_sizeof_queue_pair_alloc_msg(void);
size_t vmci_c_offsetof_event_qp_peer(void);
int vmci_c_invalid_handle_is_invalid(void);

size_t vmci_c_sizeof_datagram(void) { return sizeof(struct vmci_datagram); }
size_t vmci_c_sizeof_queue_pair_alloc_msg(void) { return sizeof(struct vmci_queue_pair_alloc_msg); }
size_t vmci_c_offsetof_event_qp_peer(void) { return offsetof(struct vmci_event_qp, payload.peer_id); }
int vmci_c_invalid_handle_is_invalid(void)
{
	struct vmci_handle h = VMCI_MAKE_HANDLE(VMCI_INVALID_ID, VMCI_INVALID_ID);
	return VMCI_HANDLE_INVALID(h) && !VMCI_HANDLE_INVALID(VMCI_MAKE_HANDLE(2, 1));
}
