/* stream_peer.c: vmci-bench-stream-peer, the ordinary program of
 * vsock_preload_stream_64KiB. It knows nothing of this project: it speaks
 * AF_VSOCK or AF_UNIX through the C library, so vmci-bench can run it
 * under vmci-vsock-run (both ends) and, for the baseline, over a Unix
 * stream socket, and compare the two.
 *
 *   vmci-bench-stream-peer recv vsock PORT       CHUNK WARMUP_S WINDOW_S
 *   vmci-bench-stream-peer recv unix  PATH       CHUNK WARMUP_S WINDOW_S
 *   vmci-bench-stream-peer send vsock CID PORT   CHUNK
 *   vmci-bench-stream-peer send unix  PATH       CHUNK
 *
 * recv listens, writes "ready\n" to stdout, accepts one connection and reads
 * it with read() in CHUNK-sized buffers, checking every byte against the
 * stream's pattern; after WARMUP_S seconds it counts the bytes of the next
 * WINDOW_S seconds, writes "BYTES NANOSECONDS\n" to stdout, closes and exits
 * 0. send connects and writes the pattern with write() in CHUNK-sized pieces
 * until the receiver goes (EPIPE or ECONNRESET, SIGPIPE ignored), then exits
 * 0. A vsock address outside vmci-vsock-run (whose filter keeps the
 * kernel's AF_VSOCK out of reach) is refused with status 1. Any other failure: a message on stderr and exit status 1; a byte that
 * does not match: exit status 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "under_launcher.h"

/* The stream's byte at offset i is pattern[i % kPeriod]; the table holds a
 * period and a chunk more, so any chunk is one contiguous slice of it. */
enum { kPeriod = 65521, kMaxChunk = 1 << 20 };

static void die(const char *what) {
  fprintf(stderr, "vmci-bench-stream-peer: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: vmci-bench-stream-peer recv {vsock PORT|unix PATH} CHUNK WARMUP_S WINDOW_S\n"
          "       vmci-bench-stream-peer send {vsock CID PORT|unix PATH} CHUNK\n");
  exit(1);
}

static unsigned long number(const char *text) {
  char *end = NULL;
  errno = 0;
  const unsigned long value = strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0') usage();
  return value;
}

static double seconds(const char *text) {
  char *end = NULL;
  const double value = strtod(text, &end);
  if (end == text || *end != '\0' || value < 0) usage();
  return value;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The socket address named by argv (the words after recv/send); *used is
 * how many words it took. */
struct address {
  union {
    struct sockaddr_vm vm;
    struct sockaddr_un un;
  } u;
  socklen_t size;
  int family;
};

static struct address parse_address(int argc, char **argv, int with_cid, int *used) {
  struct address a;
  memset(&a, 0, sizeof a);
  if (argc >= 1 && strcmp(argv[0], "vsock") == 0) {
    const int words = with_cid ? 3 : 2;
    if (argc < words) usage();
    a.family = AF_VSOCK;
    a.u.vm.svm_family = AF_VSOCK;
    a.u.vm.svm_cid = with_cid ? (unsigned)number(argv[1]) : VMADDR_CID_ANY;
    a.u.vm.svm_port = (unsigned)number(argv[words - 1]);
    a.size = sizeof a.u.vm;
    *used = words;
  } else if (argc >= 2 && strcmp(argv[0], "unix") == 0) {
    a.family = AF_UNIX;
    a.u.un.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof a.u.un.sun_path) usage();
    strcpy(a.u.un.sun_path, argv[1]);
    a.size = sizeof a.u.un;
    *used = 2;
  } else {
    usage();
  }
  return a;
}

static uint8_t *make_pattern(size_t chunk) {
  uint8_t *pattern = malloc(kPeriod + chunk);
  if (pattern == NULL) die("malloc");
  for (size_t i = 0; i < kPeriod + chunk; ++i) {
    const size_t j = i % kPeriod;
    pattern[i] = (uint8_t)(j * 131 + (j >> 8));
  }
  return pattern;
}

static int receive(struct address a, size_t chunk, double warmup_s, double window_s) {
  const int listener = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  if (bind(listener, (struct sockaddr *)&a.u, a.size) != 0) die("bind");
  if (listen(listener, 1) != 0) die("listen");
  printf("ready\n");
  fflush(stdout);
  const int fd = accept(listener, NULL, NULL);
  if (fd < 0) die("accept");
  close(listener);
  if (a.family == AF_UNIX) unlink(a.u.un.sun_path);

  const uint8_t *pattern = make_pattern(chunk);
  uint8_t *buf = malloc(chunk);
  if (buf == NULL) die("malloc");
  uint64_t offset = 0, window_start_offset = 0;
  int64_t start = 0, window_start = 0;
  const int64_t warmup_ns = (int64_t)(warmup_s * 1e9), window_ns = (int64_t)(window_s * 1e9);
  for (;;) {
    const ssize_t n = read(fd, buf, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read");
    if (n == 0) {
      fprintf(stderr, "vmci-bench-stream-peer: the sender ended the stream early\n");
      return 1;
    }
    if (memcmp(buf, pattern + offset % kPeriod, (size_t)n) != 0) {
      fprintf(stderr, "vmci-bench-stream-peer: data mismatch near offset %llu\n",
              (unsigned long long)offset);
      return 2;
    }
    offset += (uint64_t)n;
    const int64_t t = now_ns();
    if (start == 0) start = t;
    if (window_start == 0) {
      if (t - start >= warmup_ns) {
        window_start = t;
        window_start_offset = offset;
      }
    } else if (t - window_start >= window_ns) {
      printf("%llu %lld\n", (unsigned long long)(offset - window_start_offset),
             (long long)(t - window_start));
      fflush(stdout);
      close(fd);
      return 0;
    }
  }
}

static int send_all(struct address a, size_t chunk) {
  signal(SIGPIPE, SIG_IGN);
  const int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&a.u, a.size) != 0) die("connect");
  const uint8_t *pattern = make_pattern(chunk);
  uint64_t offset = 0;
  for (;;) {
    const ssize_t n = write(fd, pattern + offset % kPeriod, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return 0;
    if (n < 0) die("write");
    offset += (uint64_t)n;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) usage();
  const int receiving = strcmp(argv[1], "recv") == 0;
  if (!receiving && strcmp(argv[1], "send") != 0) usage();
  int used = 0;
  const struct address a = parse_address(argc - 2, argv + 2, !receiving, &used);
  if (a.family == AF_VSOCK && !vmci_under_launcher()) {
    fprintf(stderr, "vmci-bench-stream-peer: vsock only under vmci-vsock-run (the kernel's "
                    "AF_VSOCK must not be reached)\n");
    return 1;
  }
  char **rest = argv + 2 + used;
  const int left = argc - 2 - used;
  if (left != (receiving ? 3 : 1)) usage();
  const size_t chunk = number(rest[0]);
  if (chunk == 0 || chunk > kMaxChunk) usage();
  if (receiving) return receive(a, chunk, seconds(rest[1]), seconds(rest[2]));
  return send_all(a, chunk);
}
