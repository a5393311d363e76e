/*
 * vmci_vsock.h: vSockets over VMCI for C programs (guests and device
 * proxies), socket-like and errno-style: calls that fail return -1 (or
 * NULL) and set errno to what Linux's AF_VSOCK would (ECONNRESET, EPIPE,
 * ETIMEDOUT, EAGAIN, ...). Addresses are struct sockaddr_vm, from
 * <linux/vm_sockets.h> where it exists. Valid C99 and C++.
 *
 *   struct vmci_endpoint *ep = vmci_hostpeer_endpoint();
 *   struct vmci_vsock *vs = vmci_vsock_open(ep);
 *   struct sockaddr_vm host = { .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = 1234 };
 *   struct vmci_vsock_stream *s = vmci_vsock_connect(vs, &host, -1);
 *   vmci_vsock_send(s, "hello", 5, -1);
 *
 * Timeouts are in milliseconds: -1 waits as long as it takes, 0 does not
 * wait (EAGAIN). Each object is used from any thread; one reader and one
 * writer may block on a stream at once.
 */
#ifndef VMCI_VMCI_VSOCK_H
#define VMCI_VMCI_VSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vmci/vmci_endpoint.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/vm_sockets.h>)
#include <sys/socket.h>
#include <linux/vm_sockets.h>
#define VMCI_VSOCK_HAVE_LINUX_HEADER 1
#endif
#endif

#ifndef VMCI_VSOCK_HAVE_LINUX_HEADER
/* The layout of Linux's struct sockaddr_vm (16 bytes). */
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define VMADDR_CID_ANY 0xFFFFFFFFu
#define VMADDR_PORT_ANY 0xFFFFFFFFu
#define VMADDR_CID_HYPERVISOR 0
#define VMADDR_CID_LOCAL 1
#define VMADDR_CID_HOST 2
struct sockaddr_vm {
	unsigned short svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_flags;
	unsigned char svm_zero[3];
};
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct vmci_vsock;          /* vSockets on one endpoint */
struct vmci_vsock_listener; /* a listening stream port */
struct vmci_vsock_stream;   /* a connected stream */
struct vmci_vsock_dgram;    /* a datagram socket */

/* Opens vSockets on `endpoint` (the call takes its own reference). */
struct vmci_vsock *vmci_vsock_open(const struct vmci_endpoint *endpoint);
/* Closes every stream and listener of it; their handles stay to be freed. */
void vmci_vsock_close(struct vmci_vsock *vsock);
/* This endpoint's context id. */
unsigned int vmci_vsock_local_cid(struct vmci_vsock *vsock);

/* Streams (SOCK_STREAM). `port` VMADDR_PORT_ANY: an ephemeral one. */
struct vmci_vsock_listener *vmci_vsock_listen(struct vmci_vsock *vsock, unsigned int port,
                                              int backlog);
/* The next connection; `peer` (if not NULL) gets its address. */
struct vmci_vsock_stream *vmci_vsock_accept(struct vmci_vsock_listener *listener,
                                            struct sockaddr_vm *peer, int timeout_ms);
void vmci_vsock_listener_close(struct vmci_vsock_listener *listener);
/* timeout_ms -1: the transport's connect timeout (2 s). */
struct vmci_vsock_stream *vmci_vsock_connect(struct vmci_vsock *vsock,
                                             const struct sockaddr_vm *remote, int timeout_ms);
/* Bytes sent (at least 1) or -1; EPIPE once sending is shut down. */
ssize_t vmci_vsock_send(struct vmci_vsock_stream *stream, const void *buf, size_t len,
                        int timeout_ms);
/* Bytes read (0: the peer will send no more) or -1. */
ssize_t vmci_vsock_recv(struct vmci_vsock_stream *stream, void *buf, size_t len, int timeout_ms);
/* how: SHUT_RD, SHUT_WR or SHUT_RDWR (0, 1, 2). */
int vmci_vsock_shutdown(struct vmci_vsock_stream *stream, int how);
int vmci_vsock_getsockname(struct vmci_vsock_stream *stream, struct sockaddr_vm *out);
int vmci_vsock_getpeername(struct vmci_vsock_stream *stream, struct sockaddr_vm *out);
/* Closes it (the peer sees the end of the stream) and frees the handle. */
void vmci_vsock_stream_close(struct vmci_vsock_stream *stream);

/* Datagrams (SOCK_DGRAM): the port is a VMCI resource id. */
struct vmci_vsock_dgram *vmci_vsock_dgram_bind(struct vmci_vsock *vsock,
                                               const struct sockaddr_vm *local);
ssize_t vmci_vsock_sendto(struct vmci_vsock_dgram *socket, const void *buf, size_t len,
                          const struct sockaddr_vm *to);
/* One datagram; a longer one is cut to `len` (and the rest lost). */
ssize_t vmci_vsock_recvfrom(struct vmci_vsock_dgram *socket, void *buf, size_t len,
                            struct sockaddr_vm *from, int timeout_ms);
void vmci_vsock_dgram_close(struct vmci_vsock_dgram *socket);

#ifdef __cplusplus
}
#endif

#endif /* VMCI_VMCI_VSOCK_H */
