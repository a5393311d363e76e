/*
 * A guest written against the C API only (C99): the test drives it. Each
 * function returns 0, or the errno of the first call that failed.
 */
#include <errno.h>
#include <string.h>

#include <vmci/vmci_hostpeer.h>
#include <vmci/vmci_vsock.h>

#include "c_api_guest.h"

/* vSockets on the guest connection to `socket_path`; NULL (errno set) if not. */
static struct vmci_vsock *open_vsock(const char *socket_path)
{
	struct vmci_endpoint *ep;
	struct vmci_vsock *vs;

	if (vmci_hostpeer_connect(socket_path) != VMCI_SUCCESS) {
		errno = ENOTCONN;
		return NULL;
	}
	ep = vmci_hostpeer_endpoint();
	vs = vmci_vsock_open(ep);
	vmci_endpoint_release(ep);
	return vs;
}

/* The host's address at `port`. */
static struct sockaddr_vm host_at(unsigned int port)
{
	struct sockaddr_vm host;

	memset(&host, 0, sizeof host);
	host.svm_family = AF_VSOCK;
	host.svm_cid = VMADDR_CID_HOST;
	host.svm_port = port;
	return host;
}

int c_guest_echo(const char *socket_path, unsigned int port)
{
	struct sockaddr_vm host;
	struct vmci_vsock *vs;
	struct vmci_vsock_stream *s;
	char buf[64];
	const char hello[] = "hello from C";
	size_t got = 0;
	int error = 0;

	vs = open_vsock(socket_path);
	if (vs == NULL)
		return errno;
	host = host_at(port);
	s = vmci_vsock_connect(vs, &host, -1);
	if (s == NULL) {
		error = errno;
		vmci_vsock_close(vs);
		return error;
	}
	if (vmci_vsock_send(s, hello, sizeof hello, -1) != (ssize_t)sizeof hello)
		error = errno;
	while (error == 0 && got < sizeof hello) {
		ssize_t n = vmci_vsock_recv(s, buf + got, sizeof buf - got, 5000);
		if (n <= 0) {
			error = n == 0 ? ECONNRESET : errno;
			break;
		}
		got += (size_t)n;
	}
	if (error == 0 && memcmp(buf, hello, sizeof hello) != 0)
		error = EBADMSG;
	vmci_vsock_stream_close(s);
	vmci_vsock_close(vs);
	return error;
}

int c_guest_connect_error(const char *socket_path, unsigned int port)
{
	struct sockaddr_vm host;
	struct vmci_vsock *vs;
	struct vmci_vsock_stream *s;
	int error = 0;

	vs = open_vsock(socket_path);
	if (vs == NULL)
		return errno;
	host = host_at(port);
	s = vmci_vsock_connect(vs, &host, -1);
	if (s == NULL)
		error = errno;
	else
		vmci_vsock_stream_close(s);
	vmci_vsock_close(vs);
	return error;
}

int c_guest_datagram(const char *socket_path, unsigned int host_port)
{
	struct sockaddr_vm local, host, from;
	struct vmci_vsock *vs;
	struct vmci_vsock_dgram *d;
	char buf[16];
	ssize_t n;
	int error = 0;

	vs = open_vsock(socket_path);
	if (vs == NULL)
		return errno;
	memset(&local, 0, sizeof local);
	local.svm_family = AF_VSOCK;
	local.svm_cid = VMADDR_CID_ANY;
	local.svm_port = VMADDR_PORT_ANY;
	d = vmci_vsock_dgram_bind(vs, &local);
	if (d == NULL) {
		error = errno;
		vmci_vsock_close(vs);
		return error;
	}
	host = host_at(host_port);
	if (vmci_vsock_sendto(d, "ping", 4, &host) != 4)
		error = errno;
	n = error ? -1 : vmci_vsock_recvfrom(d, buf, sizeof buf, &from, 5000);
	if (error == 0 && n < 0)
		error = errno;
	if (error == 0 && (n != 4 || memcmp(buf, "pong", 4) != 0 ||
	                   from.svm_cid != VMADDR_CID_HOST || from.svm_port != host_port))
		error = EBADMSG;
	vmci_vsock_dgram_close(d);
	vmci_vsock_close(vs);
	return error;
}
