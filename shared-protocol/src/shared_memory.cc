#include "vmci/proto/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <cerrno>
#include <cstring>

namespace vmci::proto {
namespace {

namespace bip = boost::interprocess;

// Lets Boost.Interprocess map a descriptor that it did not open.
class DescriptorMapping {
 public:
  explicit DescriptorMapping(int fd) : fd_(fd) {}
  bip::mapping_handle_t get_mapping_handle() const {
    return bip::ipcdetail::mapping_handle_from_file_handle(fd_);
  }

 private:
  int fd_;
};

}  // namespace

// A mapping by Boost.Interprocess, or a range reserved here (`reserved`,
// unmapped with the Region).
struct SharedMemory::Region {
  Region() = default;
  explicit Region(bip::mapped_region mapped) : region(std::move(mapped)) {}
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  bip::mapped_region region;
  void* reserved = nullptr;
  uint64_t reserved_size = 0;
  ~Region() {
    if (reserved != nullptr) ::munmap(reserved, reserved_size);
  }
};

SharedMemory::SharedMemory(std::unique_ptr<Region> region) : region_(std::move(region)) {}
SharedMemory::~SharedMemory() = default;

uint8_t* SharedMemory::data() const {
  return static_cast<uint8_t*>(region_->reserved != nullptr ? region_->reserved
                                                            : region_->region.get_address());
}
uint64_t SharedMemory::size() const {
  return region_->reserved != nullptr ? region_->reserved_size : region_->region.get_size();
}

namespace {

constexpr uint64_t kPage = 4096;

// Every extent page aligned, in a file that holds it and is sealed against
// shrinking; together exactly `size` bytes.
bool check_extents(std::span<const MemoryExtent> extents, uint64_t size, std::string* error) {
  if (size == 0 || size % kPage != 0) {
    *error = "queue pair memory of " + std::to_string(size) + " bytes is not whole pages";
    return false;
  }
  uint64_t total = 0;
  for (const MemoryExtent& e : extents) {
    if (e.size == 0 || e.size % kPage != 0 || e.offset % kPage != 0 || e.size > size - total) {
      *error = "queue pair memory extent of " + std::to_string(e.size) + " bytes at " +
               std::to_string(e.offset) + " is not whole pages within the pair";
      return false;
    }
    struct stat st{};
    if (::fstat(e.fd, &st) != 0) {
      *error = std::string("queue pair memory: fstat: ") + std::strerror(errno);
      return false;
    }
    if (e.offset > static_cast<uint64_t>(st.st_size) ||
        static_cast<uint64_t>(st.st_size) - e.offset < e.size) {
      *error = "queue pair memory extent [" + std::to_string(e.offset) + ", +" +
               std::to_string(e.size) + ") lies beyond its file of " +
               std::to_string(st.st_size) + " bytes";
      return false;
    }
    const int seals = ::fcntl(e.fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
      *error = "queue pair memory is not sealed against shrinking";
      return false;
    }
    total += e.size;
  }
  if (total != size) {
    *error = "queue pair memory extents hold " + std::to_string(total) + " bytes, the pair " +
             std::to_string(size);
    return false;
  }
  return true;
}

// Maps the extents over [base, base + their total) in place.
bool place_extents(uint8_t* base, std::span<const MemoryExtent> extents, std::string* error) {
  uint64_t at = 0;
  for (const MemoryExtent& e : extents) {
    void* got = ::mmap(base + at, e.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, e.fd,
                       static_cast<off_t>(e.offset));
    if (got == MAP_FAILED) {
      *error = std::string("mapping queue pair memory: ") + std::strerror(errno);
      return false;
    }
    at += e.size;
  }
  return true;
}

}  // namespace

std::shared_ptr<SharedMemory> SharedMemory::map_extents(std::span<const MemoryExtent> extents,
                                                        uint64_t size, std::string* error) {
  if (!check_extents(extents, size, error)) return nullptr;
  void* range = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) {
    *error = std::string("reserving queue pair memory: ") + std::strerror(errno);
    return nullptr;
  }
  auto region = std::make_unique<Region>();
  region->reserved = range;
  region->reserved_size = size;
  if (!place_extents(static_cast<uint8_t*>(range), extents, error)) return nullptr;
  return std::shared_ptr<SharedMemory>(new SharedMemory(std::move(region)));
}

bool SharedMemory::remap_extents(std::span<const MemoryExtent> extents, std::string* error) {
  if (!check_extents(extents, size(), error)) return false;
  if (place_extents(data(), extents, error)) return true;
  ::mmap(data(), size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return false;
}

std::shared_ptr<SharedMemory> SharedMemory::map_fd(int fd, uint64_t size, std::string* error) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    *error = std::string("queue pair memory: fstat: ") + std::strerror(errno);
    return nullptr;
  }
  if (static_cast<uint64_t>(st.st_size) < size) {
    *error = "queue pair memory holds " + std::to_string(st.st_size) + " bytes, " +
             std::to_string(size) + " needed";
    return nullptr;
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
    *error = "queue pair memory is not sealed against shrinking";
    return nullptr;
  }
  try {
    auto region = std::make_unique<Region>(
        bip::mapped_region(DescriptorMapping(fd), bip::read_write, 0, size));
    return std::shared_ptr<SharedMemory>(new SharedMemory(std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    *error = std::string("mapping queue pair memory: ") + e.what();
    return nullptr;
  }
}

std::shared_ptr<SharedMemory> SharedMemory::anonymous(uint64_t size, std::string* error) {
  try {
    auto region = std::make_unique<Region>(bip::anonymous_shared_memory(size));
    return std::shared_ptr<SharedMemory>(new SharedMemory(std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    *error = std::string("allocating queue pair memory: ") + e.what();
    return nullptr;
  }
}

}  // namespace vmci::proto
