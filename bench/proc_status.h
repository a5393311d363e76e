// proc_status.h: what a process holds, from /proc: its memory
// (/proc/PID/status) and its descriptors (/proc/PID/fd, and the soft
// RLIMIT_NOFILE from /proc/PID/limits). The scale figures read hostpeer's.
//
//   bench::ProcMemory m = bench::read_memory(pid);  // m.rss, m.anon, m.file, m.shmem
//   uint64_t open = bench::open_descriptors(pid);
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace bench {

struct ProcMemory {
  uint64_t rss = 0, anon = 0, file = 0, shmem = 0;  // bytes: VmRSS, RssAnon, RssFile, RssShmem
};

// Each throws std::runtime_error if the process cannot be read.
ProcMemory read_memory(pid_t pid);
uint64_t open_descriptors(pid_t pid);
uint64_t descriptor_limit(pid_t pid);  // "Max open files", soft; UINT64_MAX if unlimited

}  // namespace bench
