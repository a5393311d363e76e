/*
 * vmci_hostpeer.h: choosing the hostpeer that the C kernel API talks to.
 * Not part of FreeBSD's API. Valid C99 and C++.
 *
 * Without a call here, the first API call connects as a guest to the socket
 * $VMCI_HOSTPEER_SOCKET names, else to the default
 * ($XDG_RUNTIME_DIR/vmci-hostpeer.sock or /tmp/vmci-hostpeer-<uid>.sock).
 *
 * When that first connection fails, the reason and what to do about it
 * (start the daemon, set VMCI_HOSTPEER_SOCKET, a stale socket, a path too
 * long, a user the daemon does not admit) are written once per process to
 * stderr, beginning "vmci: ". VMCI_HOSTPEER_QUIET=1 in the environment, or
 * VMCI_HOSTPEER_FLAG_QUIET in the options of an explicit connect, turns
 * that off; vmci_hostpeer_last_error() still says it.
 *
 *   if (vmci_hostpeer_connect("/run/user/1000/my-proxy.sock") != VMCI_SUCCESS)
 *       fprintf(stderr, "%s\n", vmci_hostpeer_last_error());
 */
#ifndef VMCI_VMCI_HOSTPEER_H
#define VMCI_VMCI_HOSTPEER_H

#include <vmci/vmci_defs.h>
#include <vmci/vmci_endpoint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMCI_HOSTPEER_ROLE_GUEST 1
#define VMCI_HOSTPEER_ROLE_HOST 2

/* vmci_hostpeer_options.flags */
#define VMCI_HOSTPEER_FLAG_QUIET 0x1 /* no report on stderr when hostpeer is unreachable */
/* Host role only: connect again when hostpeer goes away, with backoff (50 ms
 * doubling to 2 s), re-creating the datagram handles and doorbells. */
#define VMCI_HOSTPEER_FLAG_RECONNECT 0x2

struct vmci_hostpeer_options {
	const char *socket_path; /* NULL: $VMCI_HOSTPEER_SOCKET or the default */
	int role;                /* VMCI_HOSTPEER_ROLE_GUEST or _HOST */
	vmci_id context_id;      /* guests: the id to ask for, or VMCI_INVALID_ID */
	uint32_t priv_flags;     /* guests: 0 or VMCI_PRIVILEGE_FLAG_RESTRICTED */
	uint32_t flags;          /* VMCI_HOSTPEER_FLAG_* */
};

/*
 * Connects (as a guest) and makes this the connection of the API calls,
 * replacing any earlier one (whose context then goes away). Returns
 * VMCI_SUCCESS, VMCI_ERROR_UNAVAILABLE when hostpeer cannot be reached, or
 * the status of hostpeer's refusal.
 */
int vmci_hostpeer_connect(const char *socket_path);
int vmci_hostpeer_connect_options(const struct vmci_hostpeer_options *options);
/* Closes the connection; the next API call connects again. */
void vmci_hostpeer_disconnect(void);
/* Why the last connect failed or the connection ended; "" if it did not. */
const char *vmci_hostpeer_last_error(void);
/*
 * The name of a VMCI status code and what it means, in one sentence:
 * "VMCI_ERROR_NO_HANDLE: the datagram's source is not one of the sender's
 * datagram handles." Every code of vmci_defs.h has one; a positive number
 * that is not a code is a count (calls such as vmci_datagram_send return
 * one), anything else "not a VMCI status code". The string is static, or
 * (for numbers without a name) the calling thread's until its next call.
 */
const char *vmci_hostpeer_strerror(int status);
/*
 * Called once when the connection ends for any reason but the program's own
 * (vmci_hostpeer_disconnect, or a connect that replaces it):
 * VMCI_HOSTPEER_LOST with why; and, with VMCI_HOSTPEER_FLAG_RECONNECT,
 * VMCI_HOSTPEER_RECONNECTED after each reconnect, with what could not be
 * re-created ("" if everything was). It runs on the library's delivery
 * thread. NULL turns it off. It applies to the current connection and the
 * later ones.
 */
#define VMCI_HOSTPEER_LOST 1
#define VMCI_HOSTPEER_RECONNECTED 2
typedef void (*vmci_hostpeer_connection_cb)(int what, const char *reason, void *data);
void vmci_hostpeer_set_disconnect_callback(vmci_hostpeer_connection_cb callback, void *data);
/*
 * Our extension to the queue-pair API (not in VMCI): waits until `qpair`'s
 * consume queue holds data (VMCI_QPAIR_WAIT_DATA) or its produce queue has
 * room (VMCI_QPAIR_WAIT_SPACE), or `timeout_ms` passes (-1: no limit).
 * Returns the bytes ready or free (> 0), VMCI_ERROR_TIMEOUT, or
 * VMCI_ERROR_QUEUEPAIR_NOTATTACHED when the peer is not attached or went
 * away (detached, died, or hostpeer went) with nothing to take;
 * VMCI_ERROR_INVALID_ARGS for a null pair or another `what`. Call it from
 * the thread that dequeues (data) or enqueues (space). A peer using this
 * library wakes it at once; another (a real guest kernel) is looked at
 * every 10 ms.
 */
#define VMCI_QPAIR_WAIT_DATA 1
#define VMCI_QPAIR_WAIT_SPACE 2
struct vmci_qpair;
int64_t vmci_qpair_wait(struct vmci_qpair *qpair, int what, int timeout_ms);
/*
 * A reference to the connection the API calls use (connecting as they
 * would if there is none yet), for libraries built over any endpoint such
 * as vSockets (vmci_vsock_open). It stays usable after the process
 * connects again; release it with vmci_endpoint_release(). NULL if there
 * is no connection and none can be made.
 */
struct vmci_endpoint *vmci_hostpeer_endpoint(void);

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_HOSTPEER_H */
