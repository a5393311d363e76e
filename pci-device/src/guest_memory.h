// guest_memory.h: the guest's RAM, as QEMU hands it over in SYNC_SYSMEM.
//
// Each SYNC_SYSMEM names up to 8 regions: [gpa, gpa + size) of guest
// physical memory is the bytes [offset, offset + size) of a file (a memfd
// when QEMU runs with memory-backend-memfd,share=on). GuestMemory maps each
// region MAP_SHARED and translates guest-physical ranges to host pointers.
//
// A new SYNC_SYSMEM replaces the whole map at once (QEMU sends the full map
// every time it changes). A translation holds the map it came from, so a
// replacement never unmaps memory a caller is still using: the old map goes
// when its last GuestRange does. All methods may be called from any thread.
//
// Bounds: a range must lie inside one region; a range that crosses from one
// region into another, runs past the end of RAM, overflows, or is empty is
// refused (nullopt), never clamped. A region that reaches past the end of
// its file is refused when the map is installed, so touching mapped memory
// never raises SIGBUS.
//
//   GuestMemory ram;
//   MemoryStatus s = ram.replace(std::move(sync.regions));
//   if (auto range = ram.translate(gpa, 24)) {
//     std::memcpy(&header, range->data(), 24);   // range keeps the map alive
//   }
//   if (auto page = ram.page_extent(gpa)) send_fd(page->fd(), page->offset);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proxy_link.h"
#include "unique_fd.h"

namespace vmci::pcidev {

constexpr uint64_t kGuestPageSize = 4096;

// One mapped region; owns its descriptor and its mapping.
class MappedRegion {
 public:
  MappedRegion(uint64_t gpa, uint64_t size, uint64_t file_offset, UniqueFd fd, void* mapping,
               size_t mapping_length, uint8_t* start);
  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  uint64_t gpa() const { return gpa_; }
  uint64_t size() const { return size_; }
  uint64_t file_offset() const { return file_offset_; }
  int fd() const { return fd_.get(); }
  uint8_t* host(uint64_t gpa) const { return start_ + (gpa - gpa_); }

 private:
  uint64_t gpa_;
  uint64_t size_;
  uint64_t file_offset_;
  UniqueFd fd_;
  void* mapping_;
  size_t mapping_length_;
  uint8_t* start_;  // the byte at gpa_
};

// An immutable map: regions sorted by gpa, not overlapping.
class GuestMemoryMap {
 public:
  explicit GuestMemoryMap(std::vector<std::unique_ptr<MappedRegion>> regions)
      : regions_(std::move(regions)) {}
  // The region holding all of [gpa, gpa + len), or null.
  const MappedRegion* find(uint64_t gpa, uint64_t len) const;
  const std::vector<std::unique_ptr<MappedRegion>>& regions() const { return regions_; }

 private:
  std::vector<std::unique_ptr<MappedRegion>> regions_;
};

// Host bytes of a guest range; valid while this object lives.
class GuestRange {
 public:
  GuestRange(std::shared_ptr<const GuestMemoryMap> map, std::span<uint8_t> bytes)
      : map_(std::move(map)), bytes_(bytes) {}
  uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  std::span<uint8_t> bytes() const { return bytes_; }

 private:
  std::shared_ptr<const GuestMemoryMap> map_;
  std::span<uint8_t> bytes_;
};

// Where a guest page lives: the file and the offset in it. fd() is borrowed
// and stays open while this object lives (dup it to keep it longer).
class PageExtent {
 public:
  PageExtent(std::shared_ptr<const GuestMemoryMap> map, int fd, uint64_t offset)
      : map_(std::move(map)), fd_(fd), offset(offset) {}
  int fd() const { return fd_; }

 private:
  std::shared_ptr<const GuestMemoryMap> map_;
  int fd_;

 public:
  const uint64_t offset;
};

struct MemoryStatus {
  bool ok = true;
  std::string message;
};

// A summary for logs and tests.
struct RegionInfo {
  uint64_t gpa;
  uint64_t size;
  uint64_t file_offset;
};

class GuestMemory {
 public:
  // Maps every region, then installs the new map in place of the old one.
  // If any region is refused (overlap, overflow, beyond its file, mmap
  // failing) nothing changes, the message says which and why, and every
  // descriptor in `regions` is closed.
  MemoryStatus replace(std::vector<SysmemRegion> regions);

  // Drops the map (a device reset does not: QEMU's map outlives it).
  void clear();

  // The host bytes of [gpa, gpa + len), or nullopt (see the bounds above).
  std::optional<GuestRange> translate(uint64_t gpa, uint64_t len) const;

  // Copies between guest memory and a buffer; false (nothing copied) if the
  // range is refused.
  bool read(uint64_t gpa, void* out, size_t len) const;
  bool write(uint64_t gpa, const void* in, size_t len);

  // The file and offset of the page holding gpa (gpa rounded down to a
  // page), or nullopt if that whole page is not in one region.
  std::optional<PageExtent> page_extent(uint64_t gpa) const;

  std::vector<RegionInfo> regions() const;
  uint64_t generation() const;  // how many maps were installed
  // The installed map (regions and their descriptors), kept alive while
  // held; null before the first.
  std::shared_ptr<const GuestMemoryMap> current() const { return snapshot(); }

 private:
  std::shared_ptr<const GuestMemoryMap> snapshot() const;

  mutable std::mutex mutex_;
  std::shared_ptr<const GuestMemoryMap> map_;  // guarded by mutex_
  uint64_t generation_ = 0;                    // guarded by mutex_
};

}  // namespace vmci::pcidev
