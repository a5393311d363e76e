/*
 * vsock-echo-guest: a C99 guest of the echo proxy: connects to the host's
 * vSockets port 1234, sends a line and prints what comes back.
 *
 *   VMCI_HOSTPEER_SOCKET=SOCKET vsock-echo-guest [TEXT]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <vmci/vmci_hostpeer.h>
#include <vmci/vmci_vsock.h>

int main(int argc, char **argv)
{
	const char *text = argc > 1 ? argv[1] : "hello over vSockets";
	struct sockaddr_vm host = {AF_VSOCK, 0, 1234, VMADDR_CID_HOST, 0, {0}};
	struct vmci_endpoint *ep = vmci_hostpeer_endpoint();
	struct vmci_vsock *vs = ep ? vmci_vsock_open(ep) : NULL;
	struct vmci_vsock_stream *s = vs ? vmci_vsock_connect(vs, &host, -1) : NULL;
	char buf[256];
	size_t len = strlen(text), got = 0;
	ssize_t n = 0;

	if (s == NULL || vmci_vsock_send(s, text, len, -1) != (ssize_t)len)
		return perror("vsock-echo-guest"), 1;
	while (got < len && (n = vmci_vsock_recv(s, buf + got, sizeof buf - got, 5000)) > 0)
		got += (size_t)n;
	printf("%.*s\n", (int)got, buf);
	vmci_vsock_stream_close(s);
	vmci_vsock_close(vs);
	vmci_endpoint_release(ep);
	return got == len ? 0 : 1;
}
