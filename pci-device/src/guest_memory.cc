// guest_memory.cc: mapping SYNC_SYSMEM regions, translating guest addresses.
#include "guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>

namespace vmci::pcidev {
namespace {

std::string describe(const SysmemRegion& r) {
  char text[96];
  std::snprintf(text, sizeof(text), "region gpa %#llx size %#llx offset %#llx",
                static_cast<unsigned long long>(r.gpa), static_cast<unsigned long long>(r.size),
                static_cast<unsigned long long>(r.offset));
  return text;
}

}  // namespace

MappedRegion::MappedRegion(uint64_t gpa, uint64_t size, uint64_t file_offset, UniqueFd fd,
                           void* mapping, size_t mapping_length, uint8_t* start)
    : gpa_(gpa),
      size_(size),
      file_offset_(file_offset),
      fd_(std::move(fd)),
      mapping_(mapping),
      mapping_length_(mapping_length),
      start_(start) {}

MappedRegion::~MappedRegion() { ::munmap(mapping_, mapping_length_); }

const MappedRegion* GuestMemoryMap::find(uint64_t gpa, uint64_t len) const {
  if (len == 0 || gpa + len < gpa) return nullptr;
  // The last region starting at or below gpa.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                             [](uint64_t a, const auto& r) { return a < r->gpa(); });
  if (it == regions_.begin()) return nullptr;
  const MappedRegion* r = std::prev(it)->get();
  uint64_t into = gpa - r->gpa();
  if (into >= r->size() || len > r->size() - into) return nullptr;
  return r;
}

MemoryStatus GuestMemory::replace(std::vector<SysmemRegion> regions) {
  std::sort(regions.begin(), regions.end(),
            [](const SysmemRegion& a, const SysmemRegion& b) { return a.gpa < b.gpa; });
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<std::unique_ptr<MappedRegion>> mapped;
  for (size_t i = 0; i < regions.size(); ++i) {
    SysmemRegion& r = regions[i];
    if (!r.fd) return {false, describe(r) + ": no descriptor"};
    if (r.size == 0) return {false, describe(r) + ": empty"};
    if (r.gpa + r.size < r.gpa) return {false, describe(r) + ": wraps around the address space"};
    if (r.offset < 0) return {false, describe(r) + ": negative file offset"};
    if (i > 0 && regions[i - 1].gpa + regions[i - 1].size > r.gpa) {
      return {false, describe(r) + ": overlaps " + describe(regions[i - 1])};
    }
    uint64_t offset = static_cast<uint64_t>(r.offset);
    if (offset + r.size < offset) return {false, describe(r) + ": file range overflows"};
    struct stat st;
    if (::fstat(r.fd.get(), &st) != 0) {
      return {false, describe(r) + ": fstat: " + std::strerror(errno)};
    }
    if (!S_ISREG(st.st_mode)) return {false, describe(r) + ": not a memory file"};
    if (offset + r.size > static_cast<uint64_t>(st.st_size)) {
      return {false, describe(r) + ": reaches past the end of its file (" +
                         std::to_string(st.st_size) + " bytes)"};
    }
    uint64_t aligned = offset & ~static_cast<uint64_t>(page - 1);
    size_t length = static_cast<size_t>(r.size + (offset - aligned));
    void* mapping = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd.get(),
                           static_cast<off_t>(aligned));
    if (mapping == MAP_FAILED) return {false, describe(r) + ": mmap: " + std::strerror(errno)};
    mapped.push_back(std::make_unique<MappedRegion>(
        r.gpa, r.size, offset, std::move(r.fd), mapping, length,
        static_cast<uint8_t*>(mapping) + (offset - aligned)));
  }
  auto map = std::make_shared<const GuestMemoryMap>(std::move(mapped));
  std::shared_ptr<const GuestMemoryMap> old;
  {
    std::lock_guard lock(mutex_);
    old = std::exchange(map_, std::move(map));
    ++generation_;
  }
  return {};  // `old` is unmapped here unless a GuestRange still holds it
}

void GuestMemory::clear() {
  std::shared_ptr<const GuestMemoryMap> old;
  std::lock_guard lock(mutex_);
  old = std::move(map_);
}

std::shared_ptr<const GuestMemoryMap> GuestMemory::snapshot() const {
  std::lock_guard lock(mutex_);
  return map_;
}

std::optional<GuestRange> GuestMemory::translate(uint64_t gpa, uint64_t len) const {
  auto map = snapshot();
  if (!map) return std::nullopt;
  const MappedRegion* r = map->find(gpa, len);
  if (r == nullptr) return std::nullopt;
  return GuestRange(std::move(map), std::span<uint8_t>(r->host(gpa), static_cast<size_t>(len)));
}

bool GuestMemory::read(uint64_t gpa, void* out, size_t len) const {
  auto range = translate(gpa, len);
  if (!range) return false;
  std::memcpy(out, range->data(), len);
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* in, size_t len) {
  auto range = translate(gpa, len);
  if (!range) return false;
  std::memcpy(range->data(), in, len);
  return true;
}

std::optional<PageExtent> GuestMemory::page_extent(uint64_t gpa) const {
  auto map = snapshot();
  if (!map) return std::nullopt;
  uint64_t page = gpa & ~(kGuestPageSize - 1);
  const MappedRegion* r = map->find(page, kGuestPageSize);
  if (r == nullptr) return std::nullopt;
  int fd = r->fd();
  uint64_t offset = r->file_offset() + (page - r->gpa());
  return PageExtent(std::move(map), fd, offset);
}

std::vector<RegionInfo> GuestMemory::regions() const {
  std::vector<RegionInfo> out;
  if (auto map = snapshot()) {
    for (const auto& r : map->regions()) out.push_back({r->gpa(), r->size(), r->file_offset()});
  }
  return out;
}

uint64_t GuestMemory::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

}  // namespace vmci::pcidev
