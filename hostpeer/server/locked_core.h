// locked_core.h: the hypervisor core behind its one mutex, shared by the
// socket server's I/O thread and embedded endpoints.
#pragma once

#include <mutex>
#include <utility>

#include "core/hypervisor.h"

namespace vmci::host {

class LockedCore {
 public:
  template <typename... Args>
  explicit LockedCore(Args&&... args) : core_(std::forward<Args>(args)...) {}

  // Runs f(core) under the lock and returns what it returns.
  template <typename F>
  auto with(F&& f) {
    std::lock_guard lock(mutex_);
    return f(core_);
  }

 private:
  std::mutex mutex_;
  Hypervisor core_;
};

}  // namespace vmci::host
