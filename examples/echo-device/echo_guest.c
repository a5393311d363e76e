/*
 * echo-guest: a guest of the echo device, in C99 against FreeBSD's kernel
 * API only. It opens a session, sends MESSAGES messages of growing sizes,
 * and checks that each comes back intact, sleeping on its doorbell in
 * between (no polling).
 *
 *   echo-guest SOCKET [MESSAGES]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vmci/vmci_hostpeer.h>
#include <vmci/vmci_kernel_api.h>

#include "protocol.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rung = PTHREAD_COND_INITIALIZER;
static int rings;
static int attached;

static void
on_attach(vmci_id sub, struct vmci_event_data *ed, void *data)
{
	(void)sub;
	(void)ed;
	(void)data;
	pthread_mutex_lock(&lock);
	attached = 1;
	pthread_cond_signal(&rung);
	pthread_mutex_unlock(&lock);
}

static void
on_ring(void *data)
{
	(void)data;
	pthread_mutex_lock(&lock);
	rings++;
	pthread_cond_signal(&rung);
	pthread_mutex_unlock(&lock);
}

static int
unused_datagram(void *data, struct vmci_datagram *dg)
{
	(void)data;
	(void)dg;
	return (VMCI_SUCCESS);
}

/* Waits (up to 5 s) until *counter differs from `seen`; its value, or -1. */
static int
wait_change(const int *counter, int seen)
{
	struct timespec until;
	int ok = 1;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&lock);
	while (*counter == seen && ok)
		ok = pthread_cond_timedwait(&rung, &lock, &until) == 0;
	seen = *counter;
	pthread_mutex_unlock(&lock);
	return (ok ? seen : -1);
}

int
main(int argc, char **argv)
{
	struct vmci_qpair *qp;
	struct vmci_handle qp_handle = VMCI_INVALID_HANDLE, bell = VMCI_INVALID_HANDLE, me;
	struct vmci_handle device_bell = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, ECHO_DEVICE_DOORBELL_RESOURCE);
	char buf[sizeof(struct vmci_datagram) + sizeof(struct echo_open)];
	struct vmci_datagram *dg = (struct vmci_datagram *)buf;
	struct echo_open open_msg;
	static unsigned char out[4096], in[4096];
	int messages = argc > 2 ? atoi(argv[2]) : 100, i, seen = 0;
	vmci_id sub;

	if (argc < 2 || vmci_hostpeer_connect(argv[1]) != VMCI_SUCCESS) {
		fprintf(stderr, "echo-guest: cannot reach %s: %s\n", argc < 2 ? "(no socket)" : argv[1],
		    vmci_hostpeer_last_error());
		return (1);
	}
	if (vmci_event_subscribe(VMCI_EVENT_QP_PEER_ATTACH, on_attach, NULL, &sub) != VMCI_SUCCESS ||
	    vmci_doorbell_create(&bell, 0, 0, on_ring, NULL) != VMCI_SUCCESS ||
	    vmci_qpair_alloc(&qp, &qp_handle, ECHO_QUEUE_SIZE, ECHO_QUEUE_SIZE, VMCI_HOST_CONTEXT_ID, 0,
	    0) != VMCI_SUCCESS ||
	    vmci_datagram_create_handle(VMCI_INVALID_ID, 0, unused_datagram, NULL, &me) != VMCI_SUCCESS) {
		fprintf(stderr, "echo-guest: set-up failed\n");
		return (1);
	}
	open_msg.queue_pair = qp_handle;
	open_msg.doorbell = bell;
	dg->dst = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, ECHO_DEVICE_DATAGRAM_RESOURCE);
	dg->src = me;
	dg->payload_size = sizeof open_msg;
	memcpy(VMCI_DG_PAYLOAD(dg), &open_msg, sizeof open_msg);
	if (vmci_datagram_send(dg) < VMCI_SUCCESS) {
		fprintf(stderr, "echo-guest: the device does not answer\n");
		return (1);
	}
	/* The device has attached when the creator hears QP_PEER_ATTACH. */
	if (wait_change(&attached, 0) != 1) {
		fprintf(stderr, "echo-guest: the device did not attach\n");
		return (1);
	}
	for (i = 0; i < messages; i++) {
		size_t size = 1 + (size_t)(i * 37) % sizeof out, got = 0, k;
		for (k = 0; k < size; k++)
			out[k] = (unsigned char)(i + k);
		if (vmci_qpair_enqueue(qp, out, size, 0) != (ssize_t)size ||
		    vmci_doorbell_notify(device_bell, 0) != VMCI_SUCCESS) {
			fprintf(stderr, "echo-guest: message %d not sent\n", i);
			return (1);
		}
		while (got < size) {
			ssize_t n = vmci_qpair_dequeue(qp, in + got, size - got, 0);
			if (n > 0) {
				got += (size_t)n;
			} else if ((seen = wait_change(&rings, seen)) < 0) {
				fprintf(stderr, "echo-guest: no echo of message %d\n", i);
				return (1);
			}
		}
		if (memcmp(in, out, size) != 0) {
			fprintf(stderr, "echo-guest: message %d came back different\n", i);
			return (1);
		}
	}
	printf("echo-guest: %d messages echoed intact\n", messages);
	vmci_qpair_detach(&qp);
	vmci_doorbell_destroy(bell);
	return (0);
}
