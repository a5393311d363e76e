#include "vmci/trace/pcapng_file.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace vmci::trace {
namespace {

constexpr uint32_t kSectionHeaderBlock = 0x0A0D0D0A;
constexpr uint32_t kInterfaceDescriptionBlock = 1;
constexpr uint32_t kEnhancedPacketBlock = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kOptionEnd = 0;
constexpr uint16_t kShbUserApplication = 4;
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfTsResolution = 9;

// Builds one block in host byte order (pcapng's byte-order magic says which).
class BlockBuilder {
 public:
  explicit BlockBuilder(uint32_t type) {
    put32(type);
    put32(0);  // total length, set by finish()
  }
  void put16(uint16_t v) { put(&v, sizeof v); }
  void put32(uint32_t v) { put(&v, sizeof v); }
  void put64(uint64_t v) { put(&v, sizeof v); }
  void put(const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  void pad() { bytes_.resize((bytes_.size() + 3) & ~size_t{3}, 0); }
  void option(uint16_t code, const void* value, uint16_t size) {
    put16(code);
    put16(size);
    put(value, size);
    pad();
  }
  void end_options() {
    put16(kOptionEnd);
    put16(0);
  }
  std::span<const uint8_t> finish() {
    const auto total = static_cast<uint32_t>(bytes_.size() + 4);
    put32(total);
    std::memcpy(bytes_.data() + 4, &total, sizeof total);
    return bytes_;
  }

 private:
  std::vector<uint8_t> bytes_;
};

uint64_t wall_clock_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

std::unique_ptr<PcapngFile> PcapngFile::open(const std::string& path, uint16_t link_type,
                                             const std::string& interface_name,
                                             std::string* error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (error) *error = "cannot open capture file " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::unique_ptr<PcapngFile> file(new PcapngFile(fd, path));

  BlockBuilder section(kSectionHeaderBlock);
  section.put32(kByteOrderMagic);
  section.put16(1);  // major version
  section.put16(0);  // minor version
  section.put64(~uint64_t{0});  // section length: not given
  static constexpr char kApplication[] = "vmci-hostpeer";
  section.option(kShbUserApplication, kApplication, sizeof kApplication - 1);
  section.end_options();

  BlockBuilder interface(kInterfaceDescriptionBlock);
  interface.put16(link_type);
  interface.put16(0);  // reserved
  interface.put32(0);  // snap length: none
  const std::string name = interface_name.substr(0, 255);
  interface.option(kIfName, name.data(), static_cast<uint16_t>(name.size()));
  const uint8_t nanoseconds = 9;
  interface.option(kIfTsResolution, &nanoseconds, 1);
  interface.end_options();

  if (!file->write_block(section.finish()) || !file->write_block(interface.finish())) {
    if (error) *error = "cannot write capture file " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  return file;
}

PcapngFile::~PcapngFile() { ::close(fd_); }

void PcapngFile::write_packet(std::span<const uint8_t> data) {
  const uint64_t now = wall_clock_ns();
  BlockBuilder packet(kEnhancedPacketBlock);
  packet.put32(0);  // interface id
  packet.put32(static_cast<uint32_t>(now >> 32));
  packet.put32(static_cast<uint32_t>(now));
  packet.put32(static_cast<uint32_t>(data.size()));  // captured length
  packet.put32(static_cast<uint32_t>(data.size()));  // original length
  packet.put(data.data(), data.size());
  packet.pad();
  if (!write_block(packet.finish()) && !failed_.exchange(true)) {
    std::fprintf(stderr, "vmci capture: writing %s failed: %s\n", path_.c_str(),
                 std::strerror(errno));
  }
}

bool PcapngFile::read_packets(const std::string& path,
                              std::vector<std::vector<uint8_t>>* packets, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = "cannot open " + path;
    return false;
  }
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>()};
  auto u32_at = [&](size_t offset) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + offset, sizeof v);
    return v;
  };
  size_t offset = 0;
  while (offset < bytes.size()) {
    if (bytes.size() - offset < 12) {
      if (error) *error = path + ": a block cut short at offset " + std::to_string(offset);
      return false;
    }
    const uint32_t type = u32_at(offset);
    const uint32_t length = u32_at(offset + 4);
    if (length < 12 || length % 4 != 0 || length > bytes.size() - offset ||
        u32_at(offset + length - 4) != length) {
      if (error) *error = path + ": a bad block length at offset " + std::to_string(offset);
      return false;
    }
    if (type == kEnhancedPacketBlock) {
      const uint32_t captured = length >= 32 ? u32_at(offset + 20) : length;
      if (length < 32 || captured > length - 32) {
        if (error) *error = path + ": a bad packet length at offset " + std::to_string(offset);
        return false;
      }
      const auto* data = bytes.data() + offset + 28;
      packets->emplace_back(data, data + captured);
    }
    offset += length;
  }
  return true;
}

bool PcapngFile::write_block(std::span<const uint8_t> block) {
  ssize_t n;
  do {
    n = ::write(fd_, block.data(), block.size());
  } while (n < 0 && errno == EINTR);
  if (n >= 0 && n != static_cast<ssize_t>(block.size())) errno = ENOSPC;
  return n == static_cast<ssize_t>(block.size());
}

}  // namespace vmci::trace
