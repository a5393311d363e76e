/*
 * vmci_kernel_api.h: FreeBSD's VMCI kernel API, for programs that run
 * against hostpeer instead of a VMCI device. Valid C99 and C++.
 *
 * The types, constants and helpers are those of FreeBSD's vmci_defs.h and
 * vmci_call_defs.h; the functions have FreeBSD's names and signatures and
 * return what FreeBSD's return. Calls reach hostpeer over a connection made
 * on first use, to the socket $VMCI_HOSTPEER_SOCKET names (else the
 * default); vmci_hostpeer.h connects explicitly.
 *
 *   #include <vmci/vmci_kernel_api.h>
 *
 *   static int on_datagram(void *data, struct vmci_datagram *dg) { ...; return 0; }
 *
 *   struct vmci_handle h;
 *   if (vmci_datagram_create_handle(VMCI_INVALID_ID, 0, on_datagram, NULL, &h) < VMCI_SUCCESS)
 *       ...
 *
 * Callbacks run on the driver's delivery thread, one at a time, with no lock
 * of the driver held: they may call any function here.
 */
#ifndef VMCI_VMCI_KERNEL_API_H
#define VMCI_VMCI_KERNEL_API_H

#include <sys/types.h>
#include <vmci/vmci_call_defs.h>
#include <vmci/vmci_defs.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMCI_KERNEL_API_VERSION_1 1
#define VMCI_KERNEL_API_VERSION_2 2
#define VMCI_KERNEL_API_VERSION VMCI_KERNEL_API_VERSION_2

/* The doorbell callback flag of kernel API version 2. */
#define VMCI_FLAG_DELAYED_CB 0x01
typedef void (*vmci_callback)(void *client_data);

/* Datagram API. */
int vmci_datagram_create_handle(vmci_id resource_id, uint32_t flags,
    vmci_datagram_recv_cb recv_cb, void *client_data, struct vmci_handle *out_handle);
int vmci_datagram_create_handle_priv(vmci_id resource_id, uint32_t flags,
    vmci_privilege_flags priv_flags, vmci_datagram_recv_cb recv_cb, void *client_data,
    struct vmci_handle *out_handle);
int vmci_datagram_destroy_handle(struct vmci_handle handle);
int vmci_datagram_send(struct vmci_datagram *msg);

/* Utility API. */
vmci_id vmci_get_context_id(void);

/* Event API. */
int vmci_event_subscribe(vmci_event_type event, vmci_event_cb callback, void *callback_data,
    vmci_id *subscription);
int vmci_event_unsubscribe(vmci_id subscription);

/*
 * Doorbell API (kernel API version 2, spec §5). The callback runs on the
 * driver's delivery thread; several rings before it runs are one call.
 */
int vmci_doorbell_create(struct vmci_handle *handle, uint32_t flags,
    vmci_privilege_flags priv_flags, vmci_callback notify_cb, void *client_data);
int vmci_doorbell_destroy(struct vmci_handle handle);
int vmci_doorbell_notify(struct vmci_handle handle, vmci_privilege_flags priv_flags);

/*
 * Queue pair API (spec §6). The data calls touch only shared memory, never
 * hostpeer. One producer thread and one consumer thread may use a queue pair
 * at the same time; `mode` is unused, as on FreeBSD. The vectored calls take
 * a struct iovec array, which they advance in place by the bytes copied.
 */
struct vmci_qpair;

int vmci_qpair_alloc(struct vmci_qpair **qpair, struct vmci_handle *handle,
    uint64_t produce_q_size, uint64_t consume_q_size, vmci_id peer, uint32_t flags,
    vmci_privilege_flags priv_flags);
int vmci_qpair_detach(struct vmci_qpair **qpair);
int vmci_qpair_get_produce_indexes(const struct vmci_qpair *qpair, uint64_t *producer_tail,
    uint64_t *consumer_head);
int vmci_qpair_get_consume_indexes(const struct vmci_qpair *qpair, uint64_t *consumer_tail,
    uint64_t *producer_head);
int64_t vmci_qpair_produce_free_space(const struct vmci_qpair *qpair);
int64_t vmci_qpair_produce_buf_ready(const struct vmci_qpair *qpair);
int64_t vmci_qpair_consume_free_space(const struct vmci_qpair *qpair);
int64_t vmci_qpair_consume_buf_ready(const struct vmci_qpair *qpair);
ssize_t vmci_qpair_enqueue(struct vmci_qpair *qpair, const void *buf, size_t buf_size,
    int mode);
ssize_t vmci_qpair_dequeue(struct vmci_qpair *qpair, void *buf, size_t buf_size, int mode);
ssize_t vmci_qpair_peek(struct vmci_qpair *qpair, void *buf, size_t buf_size, int mode);
ssize_t vmci_qpair_enquev(struct vmci_qpair *qpair, void *iov, size_t iov_size, int mode);
ssize_t vmci_qpair_dequev(struct vmci_qpair *qpair, void *iov, size_t iov_size, int mode);
ssize_t vmci_qpair_peekv(struct vmci_qpair *qpair, void *iov, size_t iov_size, int mode);

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_KERNEL_API_H */
