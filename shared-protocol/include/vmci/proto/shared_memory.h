// shared_memory.h: a mapping of queue-pair memory (Boost.Interprocess).
//
// hostpeer hands each endpoint a pair's memory as a file descriptor (an
// anonymous memfd: no name anywhere, so nothing outlives the processes that
// map it), or, when the memory is a guest's own pages, as extents of the
// guest's RAM files; the endpoint maps it here (extents page by page into
// one reserved range). Guest-local pairs use anonymous memory of the
// process. Unmapped when the last reference goes.
//
//   std::string error;
//   auto memory = SharedMemory::map_fd(fd, layout.total, &error);
//   if (!memory) ...
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace vmci::proto {

// `size` bytes at `offset` of file `fd`; both multiples of 4096.
struct MemoryExtent {
  int fd;
  uint64_t offset;
  uint64_t size;
};

class SharedMemory {
 public:
  // Maps the first `size` bytes of `fd` for reading and writing (the
  // descriptor may be closed afterwards). Refuses a file that is shorter,
  // or that is not sealed against shrinking (it could then vanish under the
  // mapping). Null with *error on failure.
  static std::shared_ptr<SharedMemory> map_fd(int fd, uint64_t size, std::string* error);
  // Reserves `size` bytes of address space, then maps the extents into it
  // one after the other (MAP_FIXED, shared): they must fill it exactly,
  // each page aligned, each of a file long enough and sealed against
  // shrinking. The descriptors stay the caller's. Null with *error.
  static std::shared_ptr<SharedMemory> map_extents(std::span<const MemoryExtent> extents,
                                                   uint64_t size, std::string* error);
  // Zeroed memory private to this process.
  static std::shared_ptr<SharedMemory> anonymous(uint64_t size, std::string* error);

  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  uint8_t* data() const;
  uint64_t size() const;

  // Replaces what is mapped, in place, by the extents (checked as by
  // map_extents; they must fill size() exactly): the addresses stay valid.
  // False with *error if a check fails (nothing changed) or a mapping call
  // fails (the whole range is then inaccessible: PROT_NONE).
  bool remap_extents(std::span<const MemoryExtent> extents, std::string* error);

 private:
  struct Region;
  explicit SharedMemory(std::unique_ptr<Region> region);
  std::unique_ptr<Region> region_;
};

}  // namespace vmci::proto
