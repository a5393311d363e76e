/*
 * A guest program written against the installed C API only, compiled as
 * strict C99 with the flags pkg-config gives. It talks to the hostpeer that
 * $VMCI_HOSTPEER_SOCKET names, through the implicit connection.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c99 */

#include <pthread.h>
#include <sys/uio.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <vmci/vmci_kernel_api.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int received;
static char received_text[16];

static int
on_datagram(void *client_data, struct vmci_datagram *dg)
{
	(void)client_data;
	pthread_mutex_lock(&lock);
	if (dg->payload_size < sizeof(received_text)) {
		memcpy(received_text, VMCI_DG_PAYLOAD(dg), (size_t)dg->payload_size);
		received_text[dg->payload_size] = '\0';
	}
	received++;
	pthread_mutex_unlock(&lock);
	return (VMCI_SUCCESS);
}

static void
on_event(vmci_id sub_id, struct vmci_event_data *ed, void *client_data)
{
	(void)sub_id;
	(void)ed;
	(void)client_data;
}

#define CHECK(cond) do { \
	if (!(cond)) { fprintf(stderr, "failed: %s (line %d)\n", #cond, __LINE__); return (1); } \
} while (0)

int
main(void)
{
	struct vmci_handle h;
	char buf[sizeof(struct vmci_datagram) + 5];
	struct vmci_datagram *dg = (struct vmci_datagram *)buf;
	vmci_id cid, sub;
	int i, got;
	struct vmci_qpair *a, *b;
	struct vmci_handle qh = VMCI_INVALID_HANDLE;
	char text[8];
	struct iovec iov[2];
	uint64_t tail, head;

	cid = vmci_get_context_id();
	CHECK(VMCI_CONTEXT_IS_VM(cid));
	CHECK(vmci_datagram_create_handle(VMCI_INVALID_ID, VMCI_FLAG_DG_NONE, on_datagram, NULL,
	    &h) == VMCI_SUCCESS);
	CHECK(VMCI_HANDLE_TO_CONTEXT_ID(h) == cid);
	CHECK(VMCI_HANDLE_TO_RESOURCE_ID(h) > VMCI_RESERVED_RESOURCE_ID_MAX);
	CHECK(vmci_datagram_create_handle(1, VMCI_FLAG_WELLKNOWN_DG_HND, on_datagram, NULL, &h) ==
	    VMCI_ERROR_INVALID_ARGS);

	/* To this context's own handle, through hostpeer. */
	dg->dst = h;
	dg->src = h;
	dg->payload_size = 5;
	memcpy(VMCI_DG_PAYLOAD(dg), "hello", 5);
	CHECK(vmci_datagram_send(dg) == (int)VMCI_DG_SIZE(dg));
	for (i = 0, got = 0; i < 500 && !got; i++) {
		struct timespec ten_ms = {0, 10000000};
		pthread_mutex_lock(&lock);
		got = received;
		pthread_mutex_unlock(&lock);
		if (!got)
			nanosleep(&ten_ms, NULL);
	}
	CHECK(got == 1);
	CHECK(strcmp(received_text, "hello") == 0);

	dg->src = VMCI_MAKE_HANDLE(cid, 77);
	CHECK(vmci_datagram_send(dg) == VMCI_ERROR_NO_HANDLE);
	dg->src = h;
	dg->dst = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 4242);
	CHECK(vmci_datagram_send(dg) == VMCI_ERROR_INVALID_RESOURCE);

	CHECK(vmci_event_subscribe(VMCI_EVENT_CTX_REMOVED, on_event, NULL, &sub) == VMCI_SUCCESS);
	CHECK(sub == 1);
	CHECK(vmci_event_unsubscribe(sub) == VMCI_SUCCESS);
	CHECK(vmci_datagram_destroy_handle(h) == VMCI_SUCCESS);
	CHECK(vmci_datagram_destroy_handle(h) == VMCI_ERROR_NOT_FOUND);
	/* A queue pair: created here, and attached locally (LOCAL) with the sizes swapped. */
	CHECK(vmci_qpair_alloc(&a, &qh, 8192, 4096, VMCI_INVALID_ID, VMCI_QPFLAG_NONBLOCK, 0) ==
	    VMCI_ERROR_INVALID_ARGS);
	CHECK(vmci_qpair_alloc(&a, &qh, 8192, 4096, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0) ==
	    VMCI_SUCCESS);
	CHECK(VMCI_HANDLE_TO_CONTEXT_ID(qh) == cid);
	CHECK(vmci_qpair_alloc(&b, &qh, 4096, 8192, VMCI_INVALID_ID, VMCI_QPFLAG_LOCAL, 0) ==
	    VMCI_SUCCESS);
	CHECK(vmci_qpair_produce_free_space(a) == 8191);
	CHECK(vmci_qpair_enqueue(a, "abc", 3, 0) == 3);
	iov[0].iov_base = (void *)"defg";
	iov[0].iov_len = 4;
	CHECK(vmci_qpair_enquev(a, iov, 4, 0) == 4);
	CHECK(vmci_qpair_consume_buf_ready(b) == 7);
	CHECK(vmci_qpair_peek(b, text, 2, 0) == 2);
	iov[0].iov_base = text;
	iov[0].iov_len = 3;
	iov[1].iov_base = text + 3;
	iov[1].iov_len = 5;
	CHECK(vmci_qpair_dequev(b, iov, 8, 0) == 7);
	CHECK(memcmp(text, "abcdefg", 7) == 0);
	CHECK(vmci_qpair_dequeue(b, text, 1, 0) == VMCI_ERROR_QUEUEPAIR_NODATA);
	CHECK(vmci_qpair_get_produce_indexes(a, &tail, &head) == VMCI_SUCCESS);
	CHECK(tail == 7 && head == 7); /* head: where b reads next in a's produce queue */
	CHECK(vmci_qpair_get_consume_indexes(b, &tail, &head) == VMCI_SUCCESS);
	CHECK(tail == 7 && head == 7);
	CHECK(vmci_qpair_detach(&a) == VMCI_SUCCESS);
	CHECK(a == NULL);
	CHECK(vmci_qpair_detach(&b) == VMCI_SUCCESS);
	CHECK(vmci_qpair_detach(&b) == VMCI_ERROR_INVALID_ARGS);

	/* A pair through hostpeer: nobody attaches, the creator detaches. */
	qh = VMCI_INVALID_HANDLE;
	CHECK(vmci_qpair_alloc(&a, &qh, 65536, 65536, VMCI_HOST_CONTEXT_ID, 0, 0) == VMCI_SUCCESS);
	CHECK(vmci_qpair_enqueue(a, "x", 1, 0) == 1);
	CHECK(vmci_qpair_produce_buf_ready(a) == 1);
	CHECK(vmci_qpair_detach(&a) == VMCI_SUCCESS);

	printf("c99 program: context %u, all checks passed\n", (unsigned)cid);
	return (0);
}
