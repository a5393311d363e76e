// pcapng_file.h: a capture file that Wireshark and tshark read (pcapng: a
// Section Header Block, one Interface Description Block of the link type
// the file was opened with, then one Enhanced Packet Block per record).
// `vmci-hostpeer --capture` writes its own records in it (LINKTYPE_USER0,
// docs/CAPTURE.md); the vsock library writes vsockmon records
// (LINKTYPE_VSOCK).
//
// The file is created (or truncated) with mode 0600: records carry payloads.
// Each block is written with one write(2) on a descriptor opened with
// O_APPEND, so writers on several threads never tear a block.
//
//   std::string error;
//   auto file = vmci::trace::PcapngFile::open("/tmp/x.pcapng", 271, "vsock", &error);
//   if (file) file->write_packet(bytes);
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace vmci::trace {

// Link types (tcpdump.org's LINKTYPE_* values).
inline constexpr uint16_t kLinkTypeUser0 = 147;
inline constexpr uint16_t kLinkTypeVsock = 271;

class PcapngFile {
 public:
  // Creates or truncates `path` and writes the section header and the one
  // interface (`link_type`, named `interface_name`, nanosecond timestamps).
  // Null with *error if the file cannot be made.
  static std::unique_ptr<PcapngFile> open(const std::string& path, uint16_t link_type,
                                          const std::string& interface_name, std::string* error);
  ~PcapngFile();
  PcapngFile(const PcapngFile&) = delete;
  PcapngFile& operator=(const PcapngFile&) = delete;

  // Appends one packet stamped with the current wall-clock time. Thread-safe.
  // A failed write is reported once on stderr; capturing must not change
  // what the captured program does.
  void write_packet(std::span<const uint8_t> data);

  const std::string& path() const { return path_; }

  // Reads back the packets of a file this class wrote (one section, host
  // byte order), in order, for tests and tools. False with *error naming
  // the offset if a block is cut short or its lengths disagree.
  static bool read_packets(const std::string& path, std::vector<std::vector<uint8_t>>* packets,
                           std::string* error);

 private:
  PcapngFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  bool write_block(std::span<const uint8_t> block);
  const int fd_;
  const std::string path_;
  std::atomic<bool> failed_{false};
};

}  // namespace vmci::trace
