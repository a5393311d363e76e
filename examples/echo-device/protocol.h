/*
 * protocol.h: what the echo device and its guests agree on. Valid C99 and
 * C++.
 *
 * A guest creates a queue pair for the host and a doorbell of its own, then
 * sends an OPEN datagram to the device's datagram handle. The device
 * attaches to the pair. From then on the guest enqueues bytes and rings the
 * device's doorbell; the device dequeues them, enqueues them back and rings
 * the guest's doorbell.
 */
#ifndef ECHO_DEVICE_PROTOCOL_H
#define ECHO_DEVICE_PROTOCOL_H

#include <vmci/vmci_defs.h>

#define ECHO_DEVICE_DATAGRAM_RESOURCE 4241 /* the device's datagram handle (2, 4241) */
#define ECHO_DEVICE_DOORBELL_RESOURCE 4242 /* the device's doorbell (2, 4242) */
#define ECHO_QUEUE_SIZE 65536              /* each direction */

/* The payload of the OPEN datagram. */
struct echo_open {
	struct vmci_handle queue_pair; /* created by the guest, peer = host */
	struct vmci_handle doorbell;   /* the guest's, rung when echoes are ready */
};

#endif
