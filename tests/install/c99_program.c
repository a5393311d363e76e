/*
 * A guest program written against the installed C API only, compiled as
 * strict C99 with the flags pkg-config gives. It talks to the hostpeer that
 * $VMCI_HOSTPEER_SOCKET names, through the implicit connection.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c99 */

#include <pthread.h>
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
	printf("c99 program: context %u, all checks passed\n", (unsigned)cid);
	return (0);
}
