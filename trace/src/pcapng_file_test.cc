#include "vmci/trace/pcapng_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace vmci::trace {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

uint32_t u32_at(const std::vector<uint8_t>& bytes, size_t offset) {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

std::string temp_path(const char* name) {
  return ::testing::TempDir() + name + std::to_string(::getpid()) + ".pcapng";
}

TEST(PcapngFile, WritesSectionInterfaceAndPaddedPackets) {
  const std::string path = temp_path("pcapng_blocks");
  std::string error;
  auto file = PcapngFile::open(path, kLinkTypeVsock, "vsock", &error);
  ASSERT_TRUE(file) << error;
  const uint8_t five[] = {1, 2, 3, 4, 5};
  file->write_packet(five);
  file.reset();

  const auto bytes = read_all(path);
  ::unlink(path.c_str());
  // Walk the blocks: each starts with its type and length and ends with the
  // length again, and lengths are multiples of 4.
  std::vector<uint32_t> types;
  size_t offset = 0;
  while (offset < bytes.size()) {
    ASSERT_LE(offset + 12, bytes.size());
    const uint32_t length = u32_at(bytes, offset + 4);
    ASSERT_EQ(length % 4, 0u);
    ASSERT_LE(offset + length, bytes.size());
    EXPECT_EQ(u32_at(bytes, offset + length - 4), length);
    types.push_back(u32_at(bytes, offset));
    if (types.size() == 2) {
      EXPECT_EQ(u32_at(bytes, offset + 8) & 0xffff, kLinkTypeVsock);
    } else if (types.size() == 3) {
      EXPECT_EQ(u32_at(bytes, offset + 20), 5u);  // captured length
      EXPECT_EQ(u32_at(bytes, offset + 24), 5u);  // original length
      EXPECT_EQ(std::memcmp(bytes.data() + offset + 28, five, 5), 0);
      EXPECT_EQ(length, 28u + 8u + 4u);  // header, data padded to 8, trailer
    }
    offset += length;
  }
  EXPECT_EQ(types, (std::vector<uint32_t>{0x0A0D0D0A, 1, 6}));
}

TEST(PcapngFile, ReadPacketsGivesBackWhatWasWrittenInOrder) {
  const std::string path = temp_path("pcapng_round_trip");
  std::string error;
  auto file = PcapngFile::open(path, kLinkTypeUser0, "vmci", &error);
  ASSERT_TRUE(file) << error;
  const std::vector<std::vector<uint8_t>> written = {{}, {1}, {1, 2, 3, 4}, {9, 8, 7, 6, 5}};
  for (const auto& p : written) file->write_packet(p);
  file.reset();
  std::vector<std::vector<uint8_t>> read;
  ASSERT_TRUE(PcapngFile::read_packets(path, &read, &error)) << error;
  EXPECT_EQ(read, written);

  // A file cut in the middle of a block is an error that says where.
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(read_all(path).size() - 6)), 0);
  read.clear();
  EXPECT_FALSE(PcapngFile::read_packets(path, &read, &error));
  EXPECT_NE(error.find("offset"), std::string::npos) << error;
  ::unlink(path.c_str());
}

TEST(PcapngFile, OpenTruncatesAnEarlierCapture) {
  const std::string path = temp_path("pcapng_truncate");
  std::string error;
  auto first = PcapngFile::open(path, kLinkTypeUser0, "vmci", &error);
  ASSERT_TRUE(first) << error;
  const uint8_t data[64] = {};
  first->write_packet(data);
  first.reset();
  const size_t with_packet = read_all(path).size();
  ASSERT_TRUE(PcapngFile::open(path, kLinkTypeUser0, "vmci", &error)) << error;
  EXPECT_LT(read_all(path).size(), with_packet);
  ::unlink(path.c_str());
}

TEST(PcapngFile, UnwritablePathIsAnError) {
  std::string error;
  EXPECT_FALSE(PcapngFile::open("/nonexistent-dir/x.pcapng", kLinkTypeUser0, "vmci", &error));
  EXPECT_NE(error.find("/nonexistent-dir/x.pcapng"), std::string::npos) << error;
}

}  // namespace
}  // namespace vmci::trace
