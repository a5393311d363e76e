// notify_memory_file.h: one connection's doorbell notification memory
// (vmci/proto/notify_memory.h) as a sealed anonymous memfd: hostpeer maps it
// to ring, and hands the descriptor to the connection's endpoint, which
// maps it to wait and take. Nothing has a name, so nothing is left behind.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vmci/proto/notify_memory.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::host {

class NotifyMemoryFile {
 public:
  // Null with *error if it cannot be made.
  static std::unique_ptr<NotifyMemoryFile> create(std::string* error);
  ~NotifyMemoryFile();
  NotifyMemoryFile(const NotifyMemoryFile&) = delete;
  NotifyMemoryFile& operator=(const NotifyMemoryFile&) = delete;

  // Close-on-exec; owned by this object.
  int fd() const { return fd_; }
  proto::NotifyMemory* memory() const;
  // The wake word, keeping the mapping while held.
  std::shared_ptr<proto::NotifyWakeWord> wake_word() const;
  // Sets `index` and wakes the endpoint if it sleeps. Thread-safe.
  void ring(uint64_t index);

 private:
  NotifyMemoryFile(int fd, std::shared_ptr<proto::SharedMemory> mapping)
      : fd_(fd), mapping_(std::move(mapping)) {}
  const int fd_;
  std::shared_ptr<proto::SharedMemory> mapping_;
};

}  // namespace vmci::host
