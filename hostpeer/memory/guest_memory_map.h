// guest_memory_map.h: a guest's RAM as the files it lives in (frame.h's
// kGuestMemory), for a guest that supplies queue-pair memory as its own
// pages: its VMCI_QUEUEPAIR_ALLOC hypercall names guest-physical page
// numbers, which this map turns into extents of those files. hostpeer owns
// the descriptors and never maps them (it writes a new pair's two queue
// headers with pwrite).
//
//   std::string error;
//   auto map = GuestMemoryMap::create(flags, regions, std::move(fds), &error);
//   std::vector<QueueExtent> extents;
//   if (map && map->translate(ppns, &extents, &error)) ...
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vmci/proto/frame.h"

namespace vmci::host {

// A descriptor this process owns; closed with the last reference.
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  const int fd_;
};

// `size` bytes at `offset` of `file`: a run of a pair's memory.
struct QueueExtent {
  std::shared_ptr<const OwnedFd> file;
  uint64_t offset;
  uint64_t size;
};

class GuestMemoryMap {
 public:
  // Checks everything (each region page aligned and not empty, no overflow,
  // no two overlapping, its descriptor there, a regular file opened for
  // reading and writing, sealed against shrinking, long enough); null with
  // *error (a sentence for the log) if anything is wrong. Takes `fds` in
  // every case: they are closed on failure.
  static std::shared_ptr<const GuestMemoryMap> create(uint32_t flags,
                                                      std::span<const proto::GuestMemoryRegion> regions,
                                                      std::vector<int> fds, std::string* error);

  // Bytes per page number in this guest's alloc hypercalls (4 or 8).
  size_t ppn_size() const { return ppn64_ ? sizeof(uint64_t) : sizeof(uint32_t); }
  // The extents of `count` guest pages, page_at(i) giving page number i,
  // contiguous pages of one file coalesced; false with *error if a page
  // lies in no region.
  bool translate(uint64_t count, const std::function<uint64_t(uint64_t)>& page_at,
                 std::vector<QueueExtent>* out, std::string* error) const;

 private:
  struct Region {
    uint64_t gpa;
    uint64_t size;
    uint64_t file_offset;
    std::shared_ptr<const OwnedFd> file;
  };
  GuestMemoryMap(bool ppn64, std::vector<Region> regions)
      : ppn64_(ppn64), regions_(std::move(regions)) {}
  const bool ppn64_;
  const std::vector<Region> regions_;  // sorted by gpa
};

}  // namespace vmci::host
