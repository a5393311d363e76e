// guest_memory_test.cc: SYNC_SYSMEM maps, translation bounds, replacement.
#include "guest_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace vmci::pcidev {
namespace {

UniqueFd memfd(size_t size) {
  UniqueFd fd(::memfd_create("ram", MFD_CLOEXEC));
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  return fd;
}

UniqueFd dup_of(const UniqueFd& fd) { return UniqueFd(::dup(fd.get())); }

// Guest RAM as pc lays it out: [0, 640 KiB) and [1 MiB, 4 MiB) of one file.
std::vector<SysmemRegion> pc_layout(const UniqueFd& ram) {
  std::vector<SysmemRegion> r;
  r.push_back({0x100000, 0x300000, 0x100000, dup_of(ram)});
  r.push_back({0, 0xa0000, 0, dup_of(ram)});
  return r;
}

TEST(GuestMemory, TranslatesIntoTheFileAtItsOffset) {
  UniqueFd ram = memfd(4 << 20);
  ASSERT_EQ(::pwrite(ram.get(), "abcd", 4, 0x200000), 4);
  GuestMemory memory;
  ASSERT_TRUE(memory.replace(pc_layout(ram)).ok);
  char out[4];
  ASSERT_TRUE(memory.read(0x200000, out, 4));
  EXPECT_EQ(std::memcmp(out, "abcd", 4), 0);
  ASSERT_TRUE(memory.write(0x1000, "wxyz", 4));
  ASSERT_EQ(::pread(ram.get(), out, 4, 0x1000), 4);
  EXPECT_EQ(std::memcmp(out, "wxyz", 4), 0);
}

TEST(GuestMemory, RefusesRangesOutsideOrAcrossRegions) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  ASSERT_TRUE(memory.replace(pc_layout(ram)).ok);
  struct Case {
    uint64_t gpa, len;
    bool ok;
  } cases[] = {
      {0, 0xa0000, true},          {0x9ffff, 1, true},       {0x9ffff, 2, false},
      {0xa0000, 1, false},         {0xfffff, 2, false},      {0x100000, 0x300000, true},
      {0x3fffff, 2, false},        {0x400000, 1, false},     {0, 0, false},
      {UINT64_MAX, 2, false},      {0x100000, UINT64_MAX, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << std::hex << c.gpa << "+" << c.len);
    EXPECT_EQ(memory.translate(c.gpa, c.len).has_value(), c.ok);
  }
}

TEST(GuestMemory, NothingTranslatesBeforeTheFirstSync) {
  GuestMemory memory;
  EXPECT_FALSE(memory.translate(0, 1));
  EXPECT_FALSE(memory.page_extent(0));
}

TEST(GuestMemory, PageExtentNamesTheFileAndOffset) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  ASSERT_TRUE(memory.replace(pc_layout(ram)).ok);
  auto page = memory.page_extent(0x123456);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->offset, 0x123000u);
  struct stat a, b;
  ASSERT_EQ(::fstat(page->fd(), &a), 0);
  ASSERT_EQ(::fstat(ram.get(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_FALSE(memory.page_extent(0xa0000));
}

TEST(GuestMemory, RefusesARegionPastTheEndOfItsFileAndKeepsTheOldMap) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  ASSERT_TRUE(memory.replace(pc_layout(ram)).ok);
  std::vector<SysmemRegion> bad;
  bad.push_back({0, 8 << 20, 0, dup_of(ram)});
  MemoryStatus s = memory.replace(std::move(bad));
  EXPECT_FALSE(s.ok);
  EXPECT_NE(s.message.find("past the end"), std::string::npos) << s.message;
  EXPECT_TRUE(memory.translate(0x100000, 16));
  EXPECT_EQ(memory.generation(), 1u);
}

TEST(GuestMemory, RefusesOverlappingRegions) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  std::vector<SysmemRegion> r;
  r.push_back({0, 0x200000, 0, dup_of(ram)});
  r.push_back({0x100000, 0x100000, 0, dup_of(ram)});
  EXPECT_FALSE(memory.replace(std::move(r)).ok);
}

TEST(GuestMemory, RefusesEmptyWrappingAndNegativeRegions) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  SysmemRegion cases[] = {{0, 0, 0, dup_of(ram)},
                          {UINT64_MAX - 0xfff, 0x2000, 0, dup_of(ram)},
                          {0, 0x1000, -4096, dup_of(ram)},
                          {0, 0x1000, 0, UniqueFd()}};
  for (auto& c : cases) {
    std::vector<SysmemRegion> r;
    r.push_back(std::move(c));
    EXPECT_FALSE(memory.replace(std::move(r)).ok);
  }
}

TEST(GuestMemory, RefusesADescriptorThatIsNotAFile) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[1]);
  GuestMemory memory;
  std::vector<SysmemRegion> r;
  r.push_back({0, 0x1000, 0, UniqueFd(p[0])});
  EXPECT_FALSE(memory.replace(std::move(r)).ok);
}

TEST(GuestMemory, ARangeOutlivesTheMapItCameFrom) {
  UniqueFd ram = memfd(4 << 20);
  GuestMemory memory;
  ASSERT_TRUE(memory.replace(pc_layout(ram)).ok);
  auto range = memory.translate(0x1000, 8);
  ASSERT_TRUE(range);
  std::vector<SysmemRegion> next;
  next.push_back({0, 0x1000, 0, dup_of(ram)});
  ASSERT_TRUE(memory.replace(std::move(next)).ok);
  std::memcpy(range->data(), "still ok", 8);  // the old map is still mapped
  EXPECT_FALSE(memory.translate(0x1000, 8));   // the new one has no such page
  EXPECT_EQ(memory.generation(), 2u);
}

TEST(GuestMemory, UnalignedFileOffsetIsMapped) {
  UniqueFd ram = memfd(1 << 20);
  ASSERT_EQ(::pwrite(ram.get(), "Q", 1, 0x10010), 1);
  GuestMemory memory;
  std::vector<SysmemRegion> r;
  r.push_back({0x5000, 0x100, 0x10010, dup_of(ram)});
  ASSERT_TRUE(memory.replace(std::move(r)).ok);
  char c = 0;
  ASSERT_TRUE(memory.read(0x5000, &c, 1));
  EXPECT_EQ(c, 'Q');
}

}  // namespace
}  // namespace vmci::pcidev
