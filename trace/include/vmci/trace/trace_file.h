// trace_file.h: a trace file, where endpoints and hostpeer write what they
// did as JSON Lines (one object per line; README's "Recording and
// replaying" has the format) for `vmci-scenario record`.
//
// Lines are appended with one write(2) each on a file opened with
// O_APPEND, so several endpoints and processes may share one file without
// tearing each other's lines.
//
//   std::string error;
//   auto file = vmci::trace::TraceFile::open("/tmp/session.jsonl", &error);
//   if (file) file->write_line(R"({"kind":"note"})");
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "vmci/proto/monotonic_clock.h"

namespace vmci::trace {

// Every trace line is stamped with proto::monotonic_ns().
using proto::monotonic_ns;

class TraceFile {
 public:
  // Opens `path` for appending (created with mode 0600 if missing); null
  // with *error if it cannot be.
  static std::unique_ptr<TraceFile> open(const std::string& path, std::string* error);
  ~TraceFile();
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  // Appends `line` and a newline. Thread-safe. A failed write is reported
  // once on stderr; tracing must not change what the traced program does.
  void write_line(std::string_view line);

  const std::string& path() const { return path_; }

 private:
  TraceFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  const int fd_;
  const std::string path_;
  std::atomic<bool> failed_{false};
};

// The file $VMCI_TRACE names; null when the variable is unset or empty. If
// the file cannot be opened: null, and *error says why.
std::shared_ptr<TraceFile> trace_file_from_environment(std::string* error);

// Bytes as lower-case hex (hostpeer's own trace lines carry datagram
// payloads so, as "payload").
std::string to_hex(std::span<const uint8_t> bytes);
// Bytes as standard base64 (`+`, `/`, padded with `=`), as an endpoint's
// trace lines carry data ("data_base64", "payload_base64").
std::string to_base64(std::span<const uint8_t> bytes);

}  // namespace vmci::trace
