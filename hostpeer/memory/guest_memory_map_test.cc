#include "memory/guest_memory_map.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

namespace vmci::host {
namespace {

// A sealed memfd of `size` bytes: guest RAM as QEMU's memfd backend makes it.
int guest_ram(uint64_t size, bool seal = true) {
  const int fd = ::memfd_create("guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  if (seal) {
    EXPECT_EQ(::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  }
  return fd;
}

constexpr uint64_t kMiB = 1024 * 1024;

TEST(GuestMemoryMap, TranslatesAndCoalescesAcrossRegions) {
  // gpa [0, 1 MiB) at offset 0, gpa [4 MiB, 5 MiB) at offset 1 MiB of one file.
  const proto::GuestMemoryRegion regions[] = {{4 * kMiB, kMiB, kMiB, 0, 0}, {0, kMiB, 0, 0, 0}};
  std::string error;
  auto map = GuestMemoryMap::create(proto::kGuestMemoryPpn64, regions, {guest_ram(2 * kMiB)}, &error);
  ASSERT_TRUE(map) << error;
  EXPECT_EQ(map->ppn_size(), 8u);
  const uint64_t pages[] = {255, 1024, 1025, 3, 4};  // last page of region 0, then region 1
  std::vector<QueueExtent> extents;
  ASSERT_TRUE(map->translate(5, [&](uint64_t i) { return pages[i]; }, &extents, &error)) << error;
  // 255 -> 255*4096 and 1024 -> 1 MiB: contiguous in the file, coalesced.
  ASSERT_EQ(extents.size(), 2u);
  EXPECT_EQ(extents[0].offset, 255 * 4096u);
  EXPECT_EQ(extents[0].size, 3 * 4096u);
  EXPECT_EQ(extents[1].offset, 3 * 4096u);
  EXPECT_EQ(extents[1].size, 2 * 4096u);
}

TEST(GuestMemoryMap, APageOutsideEveryRegionIsRefused) {
  const proto::GuestMemoryRegion regions[] = {{0, kMiB, 0, 0, 0}};
  std::string error;
  auto map = GuestMemoryMap::create(0, regions, {guest_ram(kMiB)}, &error);
  ASSERT_TRUE(map) << error;
  EXPECT_EQ(map->ppn_size(), 4u);
  std::vector<QueueExtent> extents;
  for (uint64_t ppn : {uint64_t{256}, uint64_t{1} << 60, ~uint64_t{0}}) {
    SCOPED_TRACE(ppn);
    EXPECT_FALSE(map->translate(1, [&](uint64_t) { return ppn; }, &extents, &error));
    EXPECT_NE(error.find("outside"), std::string::npos) << error;
  }
}

TEST(GuestMemoryMap, BadMapsAreRefusedWithAReason) {
  struct Case {
    const char* name;
    std::vector<proto::GuestMemoryRegion> regions;
    uint32_t flags;
    int fds;
    bool seal;
    const char* reason;
  } cases[] = {
      {"unaligned gpa", {{100, kMiB, 0, 0, 0}}, 0, 1, true, "whole pages"},
      {"unaligned size", {{0, kMiB - 1, 0, 0, 0}}, 0, 1, true, "whole pages"},
      {"empty region", {{0, 0, 0, 0, 0}}, 0, 1, true, "whole pages"},
      {"unaligned offset", {{0, 4096, 12, 0, 0}}, 0, 1, true, "whole pages"},
      {"overflowing gpa", {{~uint64_t{0} - 4095, 8192, 0, 0, 0}}, 0, 1, true, "overflows"},
      {"overlap", {{0, kMiB, 0, 0, 0}, {kMiB - 4096, 8192, 0, 0, 0}}, 0, 1, true, "overlap"},
      {"too few fds", {{0, kMiB, 0, 1, 0}}, 0, 1, true, "did not come"},
      {"beyond the file", {{0, 4 * kMiB, 0, 0, 0}}, 0, 1, true, "bytes"},
      {"not sealed", {{0, kMiB, 0, 0, 0}}, 0, 1, false, "sealed"},
      {"unknown flag", {{0, kMiB, 0, 0, 0}}, 2, 1, true, "flags"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<int> fds;
    for (int i = 0; i < c.fds; ++i) fds.push_back(guest_ram(2 * kMiB, c.seal));
    std::string error;
    EXPECT_FALSE(GuestMemoryMap::create(c.flags, c.regions, std::move(fds), &error));
    EXPECT_NE(error.find(c.reason), std::string::npos) << error;
  }
}

TEST(GuestMemoryMap, ANonRegularFileIsRefused) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ::close(pipe_fds[1]);
  const proto::GuestMemoryRegion regions[] = {{0, 4096, 0, 0, 0}};
  std::string error;
  EXPECT_FALSE(GuestMemoryMap::create(0, regions, {pipe_fds[0]}, &error));
  EXPECT_NE(error.find("regular"), std::string::npos) << error;
}

}  // namespace
}  // namespace vmci::host
