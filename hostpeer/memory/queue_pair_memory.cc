#include "memory/queue_pair_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "memory/sealed_memfd.h"
#include "vmci/proto/queue.h"

namespace vmci::host {
namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

proto::QueuePairStatus* status_of(proto::SharedMemory& mapping) {
  return reinterpret_cast<proto::QueuePairStatus*>(mapping.data());
}

}  // namespace

std::shared_ptr<QueuePairMemory::StatusPage> QueuePairMemory::make_status(std::string* error) {
  const int fd = sealed_memfd("vmci-queue-pair-status", proto::kQueuePairStatusSize, error);
  if (fd < 0) return nullptr;
  auto page = std::make_shared<StatusPage>();
  page->fd = std::make_shared<const OwnedFd>(fd);
  page->mapping = proto::SharedMemory::map_fd(fd, proto::kQueuePairStatusSize, error);
  if (!page->mapping) return nullptr;
  return page;
}

bool QueuePairMemory::write_headers(uint64_t produce_size, uint64_t consume_size,
                                    std::string* error) const {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  const vmci_queue_header header{handle_, 0, 0};
  for (const uint64_t at : {layout.produce_header, layout.consume_header}) {
    const auto [fd, offset] = locate(at);  // a header is in one page, so in one extent
    if (fd < 0 || ::pwrite(fd, &header, sizeof header, offset) != static_cast<ssize_t>(sizeof header)) {
      *error = errno_text("writing queue headers");
      return false;
    }
  }
  return true;
}

std::pair<int, off_t> QueuePairMemory::locate(uint64_t at) const {
  uint64_t start = 0;
  for (const QueueExtent& e : extents_) {
    if (at < start + e.size) return {e.file->get(), static_cast<off_t>(e.offset + (at - start))};
    start += e.size;
  }
  return {-1, 0};
}

std::pair<uint64_t, uint64_t> QueuePairMemory::fill(uint64_t produce_size,
                                                    uint64_t consume_size) const {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  vmci_queue_header first{}, second{};
  for (auto [at, header] : {std::pair{layout.produce_header, &first},
                            std::pair{layout.consume_header, &second}}) {
    const auto [fd, offset] = locate(at);
    if (fd < 0 || ::pread(fd, header, sizeof *header, offset) != static_cast<ssize_t>(sizeof *header)) {
      return {0, 0};
    }
  }
  // A queue's tail is in its own header; its reader's head in the other's.
  const auto used = [](uint64_t tail, uint64_t head, uint64_t size) -> uint64_t {
    if (size == 0 || tail >= size || head >= size) return 0;
    return (tail + size - head) % size;
  };
  return {used(first.producer_tail, second.consumer_head, produce_size),
          used(second.producer_tail, first.consumer_head, consume_size)};
}

std::unique_ptr<QueuePairMemory::Blank> QueuePairMemory::make_blank(uint64_t size,
                                                                    std::string* error) {
  const int fd = sealed_memfd("vmci-queue-pair", size, error);
  if (fd < 0) return nullptr;
  auto file = std::make_shared<const OwnedFd>(fd);
  auto status = make_status(error);
  if (!status) return nullptr;
  return std::unique_ptr<Blank>(new Blank(size, std::move(file), std::move(status)));
}

std::unique_ptr<QueuePairMemory> QueuePairMemory::from_blank(vmci_handle handle,
                                                             uint64_t produce_size,
                                                             uint64_t consume_size,
                                                             std::unique_ptr<Blank> blank,
                                                             std::string* error) {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  if (!blank || blank->size_ != layout.total) {
    *error = "blank queue pair memory of the wrong size";
    return nullptr;
  }
  std::unique_ptr<QueuePairMemory> memory(new QueuePairMemory(
      handle, layout.total, false, {QueueExtent{std::move(blank->file_), 0, layout.total}},
      std::move(blank->status_)));
  if (!memory->write_headers(produce_size, consume_size, error)) return nullptr;
  return memory;
}

std::unique_ptr<QueuePairMemory> QueuePairMemory::create(vmci_handle handle, uint64_t produce_size,
                                                         uint64_t consume_size,
                                                         std::string* error) {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  std::unique_ptr<Blank> blank = make_blank(layout.total, error);
  if (!blank) return nullptr;
  return from_blank(handle, produce_size, consume_size, std::move(blank), error);
}

std::unique_ptr<QueuePairMemory> QueuePairMemory::from_guest_pages(
    vmci_handle handle, uint64_t produce_size, uint64_t consume_size,
    std::vector<QueueExtent> extents, const QueuePairMemory* replacing, std::string* error) {
  const proto::QueuePairLayout layout = proto::queue_pair_layout(produce_size, consume_size);
  uint64_t total = 0;
  for (const QueueExtent& e : extents) total += e.size;
  if (total != layout.total) {
    *error = "the guest's pages hold " + std::to_string(total) + " bytes, the pair " +
             std::to_string(layout.total);
    return nullptr;
  }
  std::shared_ptr<StatusPage> status = replacing != nullptr ? replacing->status_ : make_status(error);
  if (!status) return nullptr;
  std::unique_ptr<QueuePairMemory> memory(
      new QueuePairMemory(handle, layout.total, true, std::move(extents), std::move(status)));
  if (!memory->write_headers(produce_size, consume_size, error)) return nullptr;
  if (replacing != nullptr) {
    std::atomic_ref<uint32_t>(status_of(*memory->status_->mapping)->memory_generation)
        .fetch_add(1, std::memory_order_acq_rel);
  }
  return memory;
}

void QueuePairMemory::set_peer_attached(bool attached) {
  std::atomic_ref<uint32_t>(status_of(*status_->mapping)->peer_attached)
      .store(attached ? 1 : 0, std::memory_order_release);
}

}  // namespace vmci::host
