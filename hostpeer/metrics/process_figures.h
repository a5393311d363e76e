// process_figures.h: what the kernel says of this process (CPU time,
// memory, descriptors, start time), for the process_* metrics that every
// Prometheus client library exports under the same names.
//
//   std::string error;
//   auto figures = vmci::host::read_process_figures(&error);
//   if (!figures) log->warn("no process figures: {}", error);
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vmci::host {

struct ProcessFigures {
  double cpu_seconds = 0;        // user and system time
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;          // the soft RLIMIT_NOFILE
  double start_time_seconds = 0; // since 1970
};

// Reads /proc/self/stat, /proc/stat (the boot time) and /proc/self/fd;
// nullopt with *error naming the file and what was wrong.
std::optional<ProcessFigures> read_process_figures(std::string* error);

}  // namespace vmci::host
