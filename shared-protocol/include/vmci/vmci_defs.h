/*
 * vmci_defs.h: identifiers, status codes, flags and the queue header of VMCI,
 * with the names and values of FreeBSD's sys/dev/vmware/vmci/vmci_defs.h.
 *
 * This is the single definition of these values for the whole project: the
 * C++ protocol headers (vmci/proto/...) and the C kernel API
 * (vmci/vmci_kernel_api.h) both include it. Valid C99 and C++.
 *
 *   struct vmci_handle h = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 1024);
 *   if (VMCI_HANDLE_EQUAL(h, VMCI_INVALID_HANDLE)) ...
 */
#ifndef VMCI_VMCI_DEFS_H
#define VMCI_VMCI_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint32_t vmci_id;
typedef uint32_t vmci_resource;
typedef uint32_t vmci_privilege_flags;
typedef uint32_t PPN;

/* A resource: the context that owns it and its id inside that context. */
struct vmci_handle {
	vmci_id context;
	vmci_id resource;
};

static inline struct vmci_handle
VMCI_MAKE_HANDLE(vmci_id cid, vmci_id rid)
{
	struct vmci_handle h;

	h.context = cid;
	h.resource = rid;
	return (h);
}

#define VMCI_HANDLE_TO_CONTEXT_ID(_handle)  ((_handle).context)
#define VMCI_HANDLE_TO_RESOURCE_ID(_handle) ((_handle).resource)
#define VMCI_HANDLE_EQUAL(_h1, _h2) \
	((_h1).context == (_h2).context && (_h1).resource == (_h2).resource)

#define VMCI_INVALID_ID 0xFFFFFFFFu
static const struct vmci_handle VMCI_INVALID_HANDLE = {VMCI_INVALID_ID, VMCI_INVALID_ID};
#define VMCI_HANDLE_INVALID(_handle) VMCI_HANDLE_EQUAL((_handle), VMCI_INVALID_HANDLE)

/* A range of ids, as FreeBSD's filters use. */
struct vmci_id_range {
	int8_t action;
	vmci_id begin;
	vmci_id end;
};

/* Fixed context ids; ids below VMCI_RESERVED_CID_LIMIT are never given to a VM. */
#define VMCI_HYPERVISOR_CONTEXT_ID 0
#define VMCI_WELL_KNOWN_CONTEXT_ID 1
#define VMCI_HOST_CONTEXT_ID 2
#define VMCI_HOST_CONTEXT_INVALID_EVENT ((uintptr_t)~0)
#define VMCI_RESERVED_CID_LIMIT 16
#define VMCI_CONTEXT_IS_VM(_cid) (VMCI_INVALID_ID != (_cid) && (_cid) > VMCI_HOST_CONTEXT_ID)

/* Resource ids: 0..VMCI_RESERVED_RESOURCE_ID_MAX are reserved; dynamic ids start above. */
#define VMCI_CONTEXT_RESOURCE_ID 0
#define VMCI_EVENT_HANDLER 0
#define VMCI_DVFILTER_DATA_PATH_DATAGRAM 2
#define VMCI_RESERVED_RESOURCE_ID_MAX 1023

#define VMCI_ANON_SRC_CONTEXT_ID VMCI_INVALID_ID
#define VMCI_ANON_SRC_RESOURCE_ID VMCI_INVALID_ID
static const struct vmci_handle VMCI_ANON_SRC_HANDLE = {VMCI_ANON_SRC_CONTEXT_ID,
							VMCI_ANON_SRC_RESOURCE_ID};

#define VMCI_PATH_MAX 256
#define VMCI_DOMAIN_NAME_MAXLEN 32

/* Status codes: >= 0 is success (some calls return a count), < 0 an error. */
#define VMCI_SUCCESS_QUEUEPAIR_ATTACH 5
#define VMCI_SUCCESS_QUEUEPAIR_CREATE 4
#define VMCI_SUCCESS_LAST_DETACH 3
#define VMCI_SUCCESS_ACCESS_GRANTED 2
#define VMCI_SUCCESS_ENTRY_DEAD 1
#define VMCI_SUCCESS 0
#define VMCI_ERROR_INVALID_RESOURCE (-1)
#define VMCI_ERROR_INVALID_ARGS (-2)
#define VMCI_ERROR_NO_MEM (-3)
#define VMCI_ERROR_DATAGRAM_FAILED (-4)
#define VMCI_ERROR_MORE_DATA (-5)
#define VMCI_ERROR_NO_MORE_DATAGRAMS (-6)
#define VMCI_ERROR_NO_ACCESS (-7)
#define VMCI_ERROR_NO_HANDLE (-8)
#define VMCI_ERROR_DUPLICATE_ENTRY (-9)
#define VMCI_ERROR_DST_UNREACHABLE (-10)
#define VMCI_ERROR_PAYLOAD_TOO_LARGE (-11)
#define VMCI_ERROR_INVALID_PRIV (-12)
#define VMCI_ERROR_GENERIC (-13)
#define VMCI_ERROR_PAGE_ALREADY_SHARED (-14)
#define VMCI_ERROR_CANNOT_SHARE_PAGE (-15)
#define VMCI_ERROR_CANNOT_UNSHARE_PAGE (-16)
#define VMCI_ERROR_NO_PROCESS (-17)
#define VMCI_ERROR_NO_DATAGRAM (-18)
#define VMCI_ERROR_NO_RESOURCES (-19)
#define VMCI_ERROR_UNAVAILABLE (-20)
#define VMCI_ERROR_NOT_FOUND (-21)
#define VMCI_ERROR_ALREADY_EXISTS (-22)
#define VMCI_ERROR_NOT_PAGE_ALIGNED (-23)
#define VMCI_ERROR_INVALID_SIZE (-24)
#define VMCI_ERROR_REGION_ALREADY_SHARED (-25)
#define VMCI_ERROR_TIMEOUT (-26)
#define VMCI_ERROR_DATAGRAM_INCOMPLETE (-27)
#define VMCI_ERROR_INCORRECT_IRQL (-28)
#define VMCI_ERROR_EVENT_UNKNOWN (-29)
#define VMCI_ERROR_OBSOLETE (-30)
#define VMCI_ERROR_QUEUEPAIR_MISMATCH (-31)
#define VMCI_ERROR_QUEUEPAIR_NOTSET (-32)
#define VMCI_ERROR_QUEUEPAIR_NOTOWNER (-33)
#define VMCI_ERROR_QUEUEPAIR_NOTATTACHED (-34)
#define VMCI_ERROR_QUEUEPAIR_NOSPACE (-35)
#define VMCI_ERROR_QUEUEPAIR_NODATA (-36)
#define VMCI_ERROR_BUSMEM_INVALIDATION (-37)
#define VMCI_ERROR_MODULE_NOT_LOADED (-38)
#define VMCI_ERROR_DEVICE_NOT_FOUND (-39)
#define VMCI_ERROR_QUEUEPAIR_NOT_READY (-40)
#define VMCI_ERROR_WOULD_BLOCK (-41)
/* Range reserved for VMCI client (user) errors. */
#define VMCI_ERROR_CLIENT_MIN (-500)
#define VMCI_ERROR_CLIENT_MAX (-550)
#define VMCI_SHAREDMEM_ERROR_BAD_CONTEXT (-1000)

/* Privilege flags of contexts, datagram handles and doorbells. */
#define VMCI_NO_PRIVILEGE_FLAGS 0x00
#define VMCI_PRIVILEGE_FLAG_RESTRICTED 0x01
#define VMCI_PRIVILEGE_FLAG_TRUSTED 0x02
#define VMCI_PRIVILEGE_ALL_FLAGS (VMCI_PRIVILEGE_FLAG_RESTRICTED | VMCI_PRIVILEGE_FLAG_TRUSTED)
#define VMCI_DEFAULT_PROC_PRIVILEGE_FLAGS VMCI_NO_PRIVILEGE_FLAGS
#define VMCI_LEAST_PRIVILEGE_FLAGS VMCI_PRIVILEGE_FLAG_RESTRICTED
#define VMCI_MAX_PRIVILEGE_FLAGS VMCI_PRIVILEGE_FLAG_TRUSTED

/* Event types. FreeBSD's VMCI_EVENT_MAX is 9; only 0..4 may be subscribed to. */
typedef uint32_t vmci_event_type;

#define VMCI_EVENT_CTX_ID_UPDATE 0
#define VMCI_EVENT_CTX_REMOVED 1
#define VMCI_EVENT_QP_RESUMED 2
#define VMCI_EVENT_QP_PEER_ATTACH 3
#define VMCI_EVENT_QP_PEER_DETACH 4
#define VMCI_EVENT_MEM_ACCESS_ON 5
#define VMCI_EVENT_MEM_ACCESS_OFF 6
#define VMCI_EVENT_GUEST_PAUSED 7
#define VMCI_EVENT_GUEST_UNPAUSED 8
#define VMCI_EVENT_MAX 9

#define VMCI_EVENT_VALID_VMX(e) \
	((e) == VMCI_EVENT_QP_PEER_ATTACH || (e) == VMCI_EVENT_QP_PEER_DETACH || \
	 (e) == VMCI_EVENT_MEM_ACCESS_ON || (e) == VMCI_EVENT_MEM_ACCESS_OFF)
#define VMCI_EVENT_VALID(e) \
	((e) < VMCI_EVENT_MAX && (e) != VMCI_EVENT_MEM_ACCESS_ON && \
	 (e) != VMCI_EVENT_MEM_ACCESS_OFF && (e) != VMCI_EVENT_GUEST_PAUSED && \
	 (e) != VMCI_EVENT_GUEST_UNPAUSED)

/* Callback flags of datagram handles, doorbells and event subscriptions. */
#define VMCI_FLAG_EVENT_NONE 0
#define VMCI_FLAG_EVENT_DELAYED_CB 0x1

/* Queue pair flags (FreeBSD has no PINNED). */
#define VMCI_QPFLAG_ATTACH_ONLY 0x1
#define VMCI_QPFLAG_LOCAL 0x2
#define VMCI_QPFLAG_NONBLOCK 0x4
#define VMCI_QP_ALL_FLAGS (VMCI_QPFLAG_ATTACH_ONLY | VMCI_QPFLAG_LOCAL | VMCI_QPFLAG_NONBLOCK)
#define VMCI_QP_ASYMM VMCI_QPFLAG_NONBLOCK
#define VMCI_QP_ASYMM_PEER (VMCI_QPFLAG_ATTACH_ONLY | VMCI_QP_ASYMM)

#define VMCI_MAX_GUEST_QP_MEMORY (128 * 1024 * 1024)

/*
 * The header at the start of each queue of a queue pair. producer_tail and
 * consumer_head are written only by the endpoint that produces into this
 * queue; consumer_head is that endpoint's read position in the other queue.
 */
struct vmci_queue_header {
	struct vmci_handle handle;
	volatile uint64_t producer_tail;
	volatile uint64_t consumer_head;
};

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_DEFS_H */
