/*
 * vmci_call_defs.h: the datagram, the hypercall messages and the event
 * payloads of VMCI, with the names and layouts of FreeBSD's
 * sys/dev/vmware/vmci/vmci_call_defs.h. Valid C99 and C++.
 *
 *   char buf[VMCI_DG_HEADERSIZE + 5];
 *   struct vmci_datagram *dg = (struct vmci_datagram *)buf;
 *   dg->dst = peer; dg->src = mine; dg->payload_size = 5;
 *   memcpy(VMCI_DG_PAYLOAD(dg), "hello", 5);
 */
#ifndef VMCI_VMCI_CALL_DEFS_H
#define VMCI_VMCI_CALL_DEFS_H

#include "vmci_defs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Resource ids of the hypervisor (context 0): the "hypercalls". */
#define VMCI_RESOURCES_QUERY 0
#define VMCI_GET_CONTEXT_ID 1
#define VMCI_SET_NOTIFY_BITMAP 2
#define VMCI_DOORBELL_LINK 3
#define VMCI_DOORBELL_UNLINK 4
#define VMCI_DOORBELL_NOTIFY 5
#define VMCI_DATAGRAM_REQUEST_MAP 6
#define VMCI_DATAGRAM_REMOVE_MAP 7
#define VMCI_EVENT_SUBSCRIBE 8
#define VMCI_EVENT_UNSUBSCRIBE 9
#define VMCI_QUEUEPAIR_ALLOC 10
#define VMCI_QUEUEPAIR_DETACH 11
#define VMCI_VSOCK_VMX_LOOKUP 12
#define VMCI_HGFS_TRANSPORT 13
#define VMCI_UNITY_PBRPC_REGISTER 14
#define VSOCK_PACKET_HYPERVISOR_RID 15
#define VMCI_RESOURCE_MAX 16
#define VMCI_CORE_DEVICE_RESOURCE_MAX VMCI_QUEUEPAIR_DETACH

/* A datagram: this 24-byte header, then payload_size bytes of payload. */
struct vmci_datagram {
	struct vmci_handle dst;
	struct vmci_handle src;
	uint64_t payload_size;
};

#define VMCI_FLAG_DG_NONE 0
#define VMCI_FLAG_WELLKNOWN_DG_HND 0x1
#define VMCI_FLAG_ANYCID_DG_HND 0x2
#define VMCI_FLAG_DG_DELAYED_CB 0x4

/* Largest routable datagram, header included (17 pages). */
#define VMCI_MAX_DG_SIZE (17 * 4096)
#define VMCI_MAX_DG_PAYLOAD_SIZE (VMCI_MAX_DG_SIZE - sizeof(struct vmci_datagram))
#define VMCI_DG_PAYLOAD(_dg) (void *)((char *)(_dg) + sizeof(struct vmci_datagram))
#define VMCI_DG_HEADERSIZE sizeof(struct vmci_datagram)
#define VMCI_DG_SIZE(_dg) (VMCI_DG_HEADERSIZE + (size_t)(_dg)->payload_size)
#define VMCI_DG_SIZE_ALIGNED(_dg) ((VMCI_DG_SIZE(_dg) + 7) & (size_t)~7)

/* Pending datagram bytes a context may hold; events get extra head-room. */
#define VMCI_MAX_DATAGRAM_QUEUE_SIZE (VMCI_MAX_DG_SIZE * 2)
#define VMCI_MAX_DATAGRAM_AND_EVENT_QUEUE_SIZE \
	(VMCI_MAX_DATAGRAM_QUEUE_SIZE + 1024 * (sizeof(struct vmci_datagram) + \
	 sizeof(struct vmci_event_data_max)))

typedef int (*vmci_datagram_recv_cb)(void *client_data, struct vmci_datagram *msg);

/* VMCI_RESOURCES_QUERY: the result is a bit mask, bit i set iff resources[i] exists. */
struct vmci_resources_query_hdr {
	struct vmci_datagram hdr;
	uint32_t num_resources;
	uint32_t _padding;
};

struct vmci_resources_query_msg {
	uint32_t num_resources;
	uint32_t _padding;
	vmci_resource resources[1];
};

#define VMCI_RESOURCE_QUERY_MAX_NUM 31
#define VMCI_RESOURCE_QUERY_MAX_SIZE \
	(sizeof(struct vmci_resources_query_hdr) + \
	 VMCI_RESOURCE_QUERY_MAX_NUM * sizeof(vmci_id))

/* VMCI_SET_NOTIFY_BITMAP. */
struct vmci_notify_bitmap_set_msg {
	struct vmci_datagram hdr;
	PPN bitmap_ppn;
	uint32_t _pad;
};

/* VMCI_DOORBELL_LINK / UNLINK / NOTIFY. */
struct vmci_doorbell_link_msg {
	struct vmci_datagram hdr;
	struct vmci_handle handle;
	uint64_t notify_idx;
};

struct vmci_doorbell_unlink_msg {
	struct vmci_datagram hdr;
	struct vmci_handle handle;
};

struct vmci_doorbell_notify_msg {
	struct vmci_datagram hdr;
	struct vmci_handle handle;
};

/* Events: vmci_event_data, then a payload. */
struct vmci_event_data {
	vmci_event_type event;
	uint32_t _pad;
};

struct vmci_event_payload_context {
	vmci_id context_id;
	uint32_t _pad;
};

struct vmci_event_payload_qp {
	struct vmci_handle handle;
	vmci_id peer_id;
	uint32_t _pad;
};

/* Room for an event_data and its largest payload. */
struct vmci_event_data_max {
	struct vmci_event_data event_data;
	union {
		struct vmci_event_payload_context context_payload;
		struct vmci_event_payload_qp qp_payload;
	} ev_data_payload;
};

/* Event delivery: dst (cid, VMCI_EVENT_HANDLER), src (VMCI_HYPERVISOR_CONTEXT_ID, 0). */
struct vmci_event_msg {
	struct vmci_datagram hdr;
	struct vmci_event_data event_data;
};

struct vmci_event_context {
	struct vmci_event_msg msg;
	struct vmci_event_payload_context payload;
};

struct vmci_event_qp {
	struct vmci_event_msg msg;
	struct vmci_event_payload_qp payload;
};

/* The payload that follows an event_data. */
static inline void *
vmci_event_data_payload(struct vmci_event_data *ev_data)
{
	return ((char *)ev_data + sizeof(*ev_data));
}

/* The payload that follows the event_data of an event message. */
static inline void *
vmci_event_msg_payload(struct vmci_event_msg *e_msg)
{
	return (vmci_event_data_payload(&e_msg->event_data));
}

typedef void (*vmci_event_cb)(vmci_id sub_id, struct vmci_event_data *ed, void *client_data);

/* VMCI_QUEUEPAIR_ALLOC: then num_ppns PPNs (produce queue pages, consume queue pages). */
struct vmci_queue_pair_alloc_msg {
	struct vmci_datagram hdr;
	struct vmci_handle handle;
	vmci_id peer;
	uint32_t flags;
	uint64_t produce_size;
	uint64_t consume_size;
	uint64_t num_ppns;
};

/* VMCI_QUEUEPAIR_DETACH. */
struct vmci_queue_pair_detach_msg {
	struct vmci_datagram hdr;
	struct vmci_handle handle;
};

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_CALL_DEFS_H */
