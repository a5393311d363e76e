#include "memory/guest_memory_map.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vmci::host {
namespace {

constexpr uint64_t kPage = 4096;

std::string region_name(size_t i, const proto::GuestMemoryRegion& r) {
  return "region " + std::to_string(i) + " (gpa " + std::to_string(r.gpa) + ", " +
         std::to_string(r.size) + " bytes at " + std::to_string(r.file_offset) + " of descriptor " +
         std::to_string(r.fd_index) + ")";
}

// Why `fd` cannot hold guest RAM up to `end`, or empty.
std::string unusable_file(int fd, uint64_t end) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return std::string("fstat: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file or memfd";
  const int mode = ::fcntl(fd, F_GETFL);
  if (mode < 0 || (mode & O_ACCMODE) != O_RDWR) return "not open for reading and writing";
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
    return "not sealed against shrinking (a host endpoint's mapping could lose its pages)";
  }
  if (static_cast<uint64_t>(st.st_size) < end) {
    return "the file holds " + std::to_string(st.st_size) + " bytes, " + std::to_string(end) +
           " needed";
  }
  return {};
}

}  // namespace

OwnedFd::~OwnedFd() { ::close(fd_); }

std::shared_ptr<const GuestMemoryMap> GuestMemoryMap::create(
    uint32_t flags, std::span<const proto::GuestMemoryRegion> regions, std::vector<int> fds,
    std::string* error) {
  std::vector<std::shared_ptr<const OwnedFd>> files;
  for (int fd : fds) files.push_back(std::make_shared<const OwnedFd>(fd));
  if (flags & ~proto::kGuestMemoryPpn64) {
    *error = "unknown guest memory flags " + std::to_string(flags);
    return nullptr;
  }
  if (regions.size() > proto::kMaxGuestMemoryRegions) {
    *error = std::to_string(regions.size()) + " regions (at most " +
             std::to_string(proto::kMaxGuestMemoryRegions) + ")";
    return nullptr;
  }
  std::vector<Region> checked;
  for (size_t i = 0; i < regions.size(); ++i) {
    const proto::GuestMemoryRegion& r = regions[i];
    if (r.size == 0 || r.size % kPage != 0 || r.gpa % kPage != 0 || r.file_offset % kPage != 0) {
      *error = region_name(i, r) + " is not whole pages";
      return nullptr;
    }
    if (r.gpa + r.size < r.gpa || r.file_offset + r.size < r.file_offset) {
      *error = region_name(i, r) + " overflows";
      return nullptr;
    }
    if (r.fd_index >= files.size()) {
      *error = region_name(i, r) + " names a descriptor that did not come (" +
               std::to_string(files.size()) + " came)";
      return nullptr;
    }
    const std::string why = unusable_file(files[r.fd_index]->get(), r.file_offset + r.size);
    if (!why.empty()) {
      *error = region_name(i, r) + ": " + why;
      return nullptr;
    }
    checked.push_back(Region{r.gpa, r.size, r.file_offset, files[r.fd_index]});
  }
  std::sort(checked.begin(), checked.end(),
            [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
  for (size_t i = 1; i < checked.size(); ++i) {
    if (checked[i - 1].gpa + checked[i - 1].size > checked[i].gpa) {
      *error = "regions at gpa " + std::to_string(checked[i - 1].gpa) + " and " +
               std::to_string(checked[i].gpa) + " overlap";
      return nullptr;
    }
  }
  return std::shared_ptr<const GuestMemoryMap>(
      new GuestMemoryMap((flags & proto::kGuestMemoryPpn64) != 0, std::move(checked)));
}

bool GuestMemoryMap::translate(uint64_t count, const std::function<uint64_t(uint64_t)>& page_at,
                               std::vector<QueueExtent>* out, std::string* error) const {
  out->clear();
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t ppn = page_at(i);
    const uint64_t gpa = ppn * kPage;
    // The last region starting at or below gpa.
    auto it = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                               [](uint64_t g, const Region& r) { return g < r.gpa; });
    if (ppn > UINT64_MAX / kPage || it == regions_.begin() ||
        gpa - std::prev(it)->gpa >= std::prev(it)->size) {
      *error = "page " + std::to_string(i) + " of the pair, guest page " + std::to_string(ppn) +
               ", lies outside the guest's memory";
      return false;
    }
    const Region& r = *std::prev(it);
    const uint64_t offset = r.file_offset + (gpa - r.gpa);
    if (!out->empty() && out->back().file == r.file &&
        out->back().offset + out->back().size == offset) {
      out->back().size += kPage;
    } else {
      out->push_back(QueueExtent{r.file, offset, kPage});
    }
  }
  return true;
}

}  // namespace vmci::host
