// queue_pair_memory.h: the memory of one queue pair, laid out as VMCI does
// (vmci/proto/queue.h), as a list of extents of files. Either
// - hostpeer's own: one anonymous memfd (no name in /dev/shm or anywhere,
//   so nothing can be left behind by a killed process), sealed against
//   resizing so that no endpoint can shrink it under another's mapping; or
// - a guest's own pages (a guest with frame.h's kFeatureGuestMemory): the
//   extents of its RAM files that its alloc hypercall's page numbers name
//   (memory/guest_memory_map.h), as in VMCI.
// Both queue headers are initialised as the hypervisor does at create time
// (written with pwrite: hostpeer never maps the queues).
//
// With it goes the status page of a host endpoint (proto::QueuePairStatus),
// which hostpeer maps and writes: whether the guest endpoint's memory is
// there, and how often the memory was replaced.
//
//   std::string error;
//   auto memory = QueuePairMemory::create(handle, 65536, 65536, &error);
//   send_with_fd(memory->fd());
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "memory/guest_memory_map.h"
#include "vmci/proto/shared_memory.h"
#include "vmci/vmci_defs.h"

namespace vmci::host {

class QueuePairMemory {
 public:
  // hostpeer's memfd. Sizes in guest view. Null with *error on failure.
  static std::unique_ptr<QueuePairMemory> create(vmci_handle handle, uint64_t produce_size,
                                                 uint64_t consume_size, std::string* error);
  // The guest's pages, `extents` filling the layout of these sizes (guest
  // view) exactly; the queue headers are written into them. `replacing`,
  // when given, is the memory this replaces (a pair the host created, that
  // a guest supplying its pages attached to): its status page is kept, and
  // its memory generation counted up. Null with *error on failure.
  static std::unique_ptr<QueuePairMemory> from_guest_pages(vmci_handle handle,
                                                           uint64_t produce_size,
                                                           uint64_t consume_size,
                                                           std::vector<QueueExtent> extents,
                                                           const QueuePairMemory* replacing,
                                                           std::string* error);
  // hostpeer's memory before it is a pair's: a sealed memfd of a layout's
  // whole size, zeroed, and a status page, neither ever handed to anyone
  // (QueuePairMemoryReserve makes these ahead).
  class Blank;
  // A blank of `size` bytes (a layout's total); null with *error.
  static std::unique_ptr<Blank> make_blank(uint64_t size, std::string* error);
  // A pair's memory from `blank`, which must be of the layout's total size:
  // the queue headers are written. Null with *error on failure.
  static std::unique_ptr<QueuePairMemory> from_blank(vmci_handle handle, uint64_t produce_size,
                                                     uint64_t consume_size,
                                                     std::unique_ptr<Blank> blank,
                                                     std::string* error);
  ~QueuePairMemory() = default;
  QueuePairMemory(const QueuePairMemory&) = delete;
  QueuePairMemory& operator=(const QueuePairMemory&) = delete;

  vmci_handle handle() const { return handle_; }
  uint64_t size() const { return size_; }
  // True: the guest's own pages (passed as kQueuePairMemory extents, never
  // to the guest itself); false: hostpeer's memfd, fd().
  bool guest_pages() const { return guest_pages_; }
  // The memfd (close-on-exec; owned by this object); -1 for guest pages.
  int fd() const { return guest_pages_ ? -1 : extents_.front().file->get(); }
  const std::vector<QueueExtent>& extents() const { return extents_; }
  // The bytes waiting in each queue now, read from the queue headers
  // (which the endpoints write): {the first queue, the second}, in the
  // order of the layout of these sizes (guest view, as made). A header
  // value past its queue's size reads as an empty queue.
  std::pair<uint64_t, uint64_t> fill(uint64_t produce_size, uint64_t consume_size) const;

  // The host endpoint's status page (kQueuePairStatusSize bytes).
  int status_fd() const { return status_->fd->get(); }
  // hostpeer's own mapping of it, for an endpoint in hostpeer's process
  // (an embedded host endpoint), which needs no mapping of its own.
  std::shared_ptr<proto::SharedMemory> status_mapping() const { return status_->mapping; }
  void set_peer_attached(bool attached);

 private:
  struct StatusPage {
    std::shared_ptr<const OwnedFd> fd;
    std::shared_ptr<proto::SharedMemory> mapping;
  };
  QueuePairMemory(vmci_handle handle, uint64_t size, bool guest_pages,
                  std::vector<QueueExtent> extents, std::shared_ptr<StatusPage> status)
      : handle_(handle),
        size_(size),
        guest_pages_(guest_pages),
        extents_(std::move(extents)),
        status_(std::move(status)) {}
  static std::shared_ptr<StatusPage> make_status(std::string* error);
  friend class Blank;
  // Writes both queue headers into the extents; false with *error.
  bool write_headers(uint64_t produce_size, uint64_t consume_size, std::string* error) const;
  // The file and offset of byte `at` of the pair; {-1, 0} past its end.
  std::pair<int, off_t> locate(uint64_t at) const;

  const vmci_handle handle_;
  const uint64_t size_;
  const bool guest_pages_;
  const std::vector<QueueExtent> extents_;
  const std::shared_ptr<StatusPage> status_;
};

class QueuePairMemory::Blank {
 public:
  uint64_t size() const { return size_; }

 private:
  friend class QueuePairMemory;
  Blank(uint64_t size, std::shared_ptr<const OwnedFd> file,
        std::shared_ptr<QueuePairMemory::StatusPage> status)
      : size_(size), file_(std::move(file)), status_(std::move(status)) {}
  uint64_t size_;
  std::shared_ptr<const OwnedFd> file_;
  std::shared_ptr<QueuePairMemory::StatusPage> status_;
};

}  // namespace vmci::host
