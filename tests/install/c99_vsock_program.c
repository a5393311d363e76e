/*
 * A C99 program built against the installed vmci-vsock with pkg-config:
 * it opens vSockets as a guest and connects to a host that has none, which
 * VMCI refuses (VMCI_ERROR_INVALID_RESOURCE, EHOSTUNREACH as vSockets maps
 * it), then binds a datagram socket.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vmci/vmci_hostpeer.h>
#include <vmci/vmci_vsock.h>

int main(void)
{
	struct vmci_endpoint *ep = vmci_hostpeer_endpoint();
	struct vmci_vsock *vs;
	struct sockaddr_vm addr;
	struct vmci_vsock_dgram *d;

	if (ep == NULL) {
		fprintf(stderr, "no hostpeer: %s\n", vmci_hostpeer_last_error());
		return 1;
	}
	vs = vmci_vsock_open(ep);
	vmci_endpoint_release(ep);
	if (vs == NULL) {
		perror("vmci_vsock_open");
		return 1;
	}
	memset(&addr, 0, sizeof addr);
	addr.svm_family = AF_VSOCK;
	addr.svm_cid = VMADDR_CID_HOST;
	addr.svm_port = 1234;
	if (vmci_vsock_connect(vs, &addr, 1000) != NULL || errno != EHOSTUNREACH) {
		fprintf(stderr, "connect: expected EHOSTUNREACH, got %s\n", strerror(errno));
		return 1;
	}
	addr.svm_cid = VMADDR_CID_ANY;
	addr.svm_port = VMADDR_PORT_ANY;
	d = vmci_vsock_dgram_bind(vs, &addr);
	if (d == NULL) {
		perror("vmci_vsock_dgram_bind");
		return 1;
	}
	vmci_vsock_dgram_close(d);
	vmci_vsock_close(vs);
	printf("vsock c99 program: ok\n");
	return 0;
}
