/*
 * vmci_pattern.h: the byte stream that vmci-scenario's `pattern` data
 * stands for, so that a program talking to a scenario (a device proxy, a
 * guest) can produce and check the bytes the scenario sends and expects.
 * Valid C99 and C++; the functions are in libvmci-proto.
 *
 * The stream of seed S is the little-endian bytes of SplitMix64's outputs:
 * word k (from 0) is mix(S + (k + 1) * 0x9E3779B97F4A7C15) modulo 2^64,
 * and byte i of the stream is byte (i % 8) of word (i / 8). Check values:
 * seed 0 begins af cd 1d 7b 39 a8 20 e2; seed 7 begins
 * d7 0d 32 59 e4 e1 cb 63 1c 66 3c f4 (docs/SCENARIO-FORMAT.md, "Data").
 *
 *   unsigned char buf[4096];
 *   vmci_pattern_fill(7, offset, buf, sizeof buf);   // stream bytes offset ..
 *   if (vmci_pattern_check(7, offset, got, n) != n) ... // first differing byte
 */
#ifndef VMCI_PATTERN_H
#define VMCI_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Word k of the stream of `seed`. */
uint64_t vmci_pattern_word(uint64_t seed, uint64_t k);

/* Writes stream bytes offset .. offset+n-1 of `seed` to `out`. */
void vmci_pattern_fill(uint64_t seed, uint64_t offset, void *out, size_t n);

/* The number of leading bytes of `data` (n bytes) equal to stream bytes
 * offset .. offset+n-1 of `seed`: n when all are, else the index of the
 * first that differs. */
size_t vmci_pattern_check(uint64_t seed, uint64_t offset, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif
