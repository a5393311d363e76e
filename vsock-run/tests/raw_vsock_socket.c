/* raw_vsock_socket: asks the kernel itself for an AF_VSOCK socket with a
 * raw system call (past any preload library) and prints what it answered.
 * Run only under vmci-vsock-run, whose filter must refuse it; it refuses
 * to ask at all when no filter is on it, never connects, and closes at
 * once what it might have been given. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "under_launcher.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

int main(void) {
  /* Its own guard: without the launcher's filter the kernel would make the
   * socket. The launcher sets VMCI_VSOCK_BROKER after putting its filter on. */
  if (!vmci_under_launcher()) {
    printf("no seccomp filter on this process: run it under vmci-vsock-run\n");
    return 2;
  }
  const long fd = syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
  if (fd >= 0) {
    close((int)fd);
    printf("socket(AF_VSOCK) was given descriptor %ld: the filter is missing\n", fd);
    return 1;
  }
  const int why = errno;
  printf("socket(AF_VSOCK): %s (%s)\n", strerrorname_np(why), strerror(why));
  return why == EAFNOSUPPORT ? 0 : 1;
}
