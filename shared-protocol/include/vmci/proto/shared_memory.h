// shared_memory.h: a mapping of queue-pair memory (Boost.Interprocess).
//
// hostpeer hands each endpoint a pair's memory as a file descriptor (an
// anonymous memfd: no name anywhere, so nothing outlives the processes that
// map it); the endpoint maps it here. Guest-local pairs use anonymous
// memory of the process. Unmapped when the last reference goes.
//
//   std::string error;
//   auto memory = SharedMemory::map_fd(fd, layout.total, &error);
//   if (!memory) ...
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace vmci::proto {

class SharedMemory {
 public:
  // Maps the first `size` bytes of `fd` for reading and writing (the
  // descriptor may be closed afterwards). Refuses a file that is shorter,
  // or that is not sealed against shrinking (it could then vanish under the
  // mapping). Null with *error on failure.
  static std::shared_ptr<SharedMemory> map_fd(int fd, uint64_t size, std::string* error);
  // Zeroed memory private to this process.
  static std::shared_ptr<SharedMemory> anonymous(uint64_t size, std::string* error);

  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  uint8_t* data() const;
  uint64_t size() const;

 private:
  struct Region;
  explicit SharedMemory(std::unique_ptr<Region> region);
  std::unique_ptr<Region> region_;
};

}  // namespace vmci::proto
