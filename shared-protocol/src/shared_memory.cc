#include "vmci/proto/shared_memory.h"

#include <fcntl.h>
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

struct SharedMemory::Region {
  bip::mapped_region region;
};

SharedMemory::SharedMemory(std::unique_ptr<Region> region) : region_(std::move(region)) {}
SharedMemory::~SharedMemory() = default;

uint8_t* SharedMemory::data() const { return static_cast<uint8_t*>(region_->region.get_address()); }
uint64_t SharedMemory::size() const { return region_->region.get_size(); }

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
        Region{bip::mapped_region(DescriptorMapping(fd), bip::read_write, 0, size)});
    return std::shared_ptr<SharedMemory>(new SharedMemory(std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    *error = std::string("mapping queue pair memory: ") + e.what();
    return nullptr;
  }
}

std::shared_ptr<SharedMemory> SharedMemory::anonymous(uint64_t size, std::string* error) {
  try {
    auto region = std::make_unique<Region>(Region{bip::anonymous_shared_memory(size)});
    return std::shared_ptr<SharedMemory>(new SharedMemory(std::move(region)));
  } catch (const bip::interprocess_exception& e) {
    *error = std::string("allocating queue pair memory: ") + e.what();
    return nullptr;
  }
}

}  // namespace vmci::proto
