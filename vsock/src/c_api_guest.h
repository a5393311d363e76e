/* c_api_guest.h: the C99 guest of c_api_test.cc (c_api_guest.c). */
#ifndef VMCI_VSOCK_C_API_GUEST_H
#define VMCI_VSOCK_C_API_GUEST_H

#ifdef __cplusplus
extern "C" {
#endif

/* Connects to the host's `port`, sends a greeting and checks its echo. */
int c_guest_echo(const char *socket_path, unsigned int port);
/* Connects to the host's `port` and returns the connect's errno (0: it connected). */
int c_guest_connect_error(const char *socket_path, unsigned int port);
/* Sends "ping" to the host's datagram `host_port` and expects "pong" back. */
int c_guest_datagram(const char *socket_path, unsigned int host_port);

#ifdef __cplusplus
}
#endif

#endif
