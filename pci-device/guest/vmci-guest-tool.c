/* vmci-guest-tool.c: a small static program for the guest image of
 * vmci-vm's tests: what the guest's own kernel says over vSockets, through
 * the VMCI device. Plain C and the C library only (built with -static on the
 * host and copied into the guest).
 *
 *   vmci-guest-tool cid                         the local CID (/dev/vsock)
 *   vmci-guest-tool dgram-ping CID PORT TEXT    send TEXT as a datagram and
 *                                               print the answer (10 s)
 *   vmci-guest-tool dgram-rtt CID PORT COUNT    COUNT round trips of a
 *                                               16-byte datagram to an echo;
 *                                               prints min and median (us)
 *   vmci-guest-tool dgram-echo PORT COUNT       answer COUNT datagrams with
 *                                               their own bytes
 *   vmci-guest-tool stream-send CID PORT FILE   connect, send FILE, shut
 *                                               down writing, then copy what
 *                                               the peer sends back to stdout
 *                                               until it closes
 *   vmci-guest-tool stream-recv PORT FILE       accept one connection, write
 *                                               what comes to FILE until the
 *                                               end of the stream
 *
 * Exit status 0 on success; 1 with a message on stderr otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "under_launcher.h"

static int die(const char *what) {
  fprintf(stderr, "vmci-guest-tool: %s: %s\n", what, strerror(errno));
  return 1;
}

static int local_cid(void) {
  const int fd = open("/dev/vsock", O_RDONLY);
  if (fd < 0) return die("open /dev/vsock");
  unsigned int cid = 0;
  if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) != 0) return die("IOCTL_VM_SOCKETS_GET_LOCAL_CID");
  printf("%u\n", cid);
  return 0;
}

static int dgram_ping(unsigned cid, unsigned port, const char *text) {
  const int fd = socket(AF_VSOCK, SOCK_DGRAM, 0);
  if (fd < 0) return die("socket");
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_vm to = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (sendto(fd, text, strlen(text), 0, (struct sockaddr *)&to, sizeof to) < 0) return die("sendto");
  char buf[4096];
  struct sockaddr_vm from;
  socklen_t len = sizeof from;
  const ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
  if (n < 0) return die("recvfrom");
  buf[n] = '\0';
  printf("%s (from %u:%u)\n", buf, from.svm_cid, from.svm_port);
  return 0;
}

static int compare_long(const void *a, const void *b) {
  const long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

static long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static int dgram_rtt(unsigned cid, unsigned port, long count) {
  if (count <= 0) {
    errno = EINVAL;
    return die("COUNT");
  }
  const int fd = socket(AF_VSOCK, SOCK_DGRAM, 0);
  if (fd < 0) return die("socket");
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_vm to = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  long *rtt = calloc((size_t)count, sizeof *rtt);
  if (rtt == NULL) return die("calloc");
  for (long i = 0; i < count; ++i) {
    char out[16], in[4096];
    snprintf(out, sizeof out, "rtt %011ld", i);
    const long start = now_us();
    if (sendto(fd, out, sizeof out, 0, (struct sockaddr *)&to, sizeof to) < 0) return die("sendto");
    if (recv(fd, in, sizeof in, 0) < 0) return die("recv");
    rtt[i] = now_us() - start;
  }
  qsort(rtt, (size_t)count, sizeof *rtt, compare_long);
  printf("dgram-rtt: %ld round trips, min %ld us, median %ld us, max %ld us\n", count, rtt[0],
         rtt[count / 2], rtt[count - 1]);
  free(rtt);
  return 0;
}

static int dgram_echo(unsigned port, long count) {
  const int fd = socket(AF_VSOCK, SOCK_DGRAM, 0);
  if (fd < 0) return die("socket");
  struct sockaddr_vm me = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) return die("bind");
  printf("ready\n");
  fflush(stdout);
  for (long i = 0; i < count; ++i) {
    char buf[65536];
    struct sockaddr_vm from;
    socklen_t len = sizeof from;
    const ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) return die("recvfrom");
    if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len) < 0) return die("sendto");
  }
  return 0;
}

static int copy(int from, int to, const char *what) {
  static char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return die(what);
    if (n == 0) return 0;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(to, buf + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return die(what);
      done += w;
    }
  }
}

static int stream_send(unsigned cid, unsigned port, const char *path) {
  const int file = open(path, O_RDONLY);
  if (file < 0) return die(path);
  const int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (fd < 0) return die("socket");
  struct sockaddr_vm to = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) return die("connect");
  if (copy(file, fd, "sending") != 0) return 1;
  if (shutdown(fd, SHUT_WR) != 0) return die("shutdown");
  printf("sent %s\n", path);
  fflush(stdout);
  return copy(fd, STDOUT_FILENO, "receiving the answer");
}

static int stream_recv(unsigned port, const char *path) {
  const int file = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (file < 0) return die(path);
  const int listener = socket(AF_VSOCK, SOCK_STREAM, 0);
  if (listener < 0) return die("socket");
  struct sockaddr_vm me = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (bind(listener, (struct sockaddr *)&me, sizeof me) != 0) return die("bind");
  if (listen(listener, 1) != 0) return die("listen");
  printf("ready\n");
  fflush(stdout);
  const int fd = accept(listener, NULL, NULL);
  if (fd < 0) return die("accept");
  if (copy(fd, file, "receiving") != 0) return 1;
  close(fd);
  printf("received %s\n", path);
  return 0;
}

int main(int argc, char **argv) {
  /* Its vsock is the guest kernel's, which goes through this project's
   * device; on any other machine only under vmci-vsock-run. */
  if (!vmci_in_vmci_guest() && !vmci_under_launcher()) {
    fprintf(stderr, "vmci-guest-tool: not in a guest with a VMCI device, nor under "
                    "vmci-vsock-run: refusing to reach the kernel's vsock\n");
    return 2;
  }
  if (argc == 2 && strcmp(argv[1], "cid") == 0) return local_cid();
  if (argc == 5 && strcmp(argv[1], "dgram-ping") == 0) {
    return dgram_ping((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10),
                      argv[4]);
  }
  if (argc == 5 && strcmp(argv[1], "dgram-rtt") == 0) {
    return dgram_rtt((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10),
                     strtol(argv[4], NULL, 10));
  }
  if (argc == 4 && strcmp(argv[1], "dgram-echo") == 0) {
    return dgram_echo((unsigned)strtoul(argv[2], NULL, 10), strtol(argv[3], NULL, 10));
  }
  if (argc == 5 && strcmp(argv[1], "stream-send") == 0) {
    return stream_send((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10),
                       argv[4]);
  }
  if (argc == 4 && strcmp(argv[1], "stream-recv") == 0) {
    return stream_recv((unsigned)strtoul(argv[2], NULL, 10), argv[3]);
  }
  fprintf(stderr, "usage: vmci-guest-tool cid | dgram-ping CID PORT TEXT | dgram-rtt CID PORT COUNT |\n"
                  "       dgram-echo PORT COUNT |\n"
                  "       stream-send CID PORT FILE | stream-recv PORT FILE\n");
  return 1;
}
