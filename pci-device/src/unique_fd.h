// unique_fd.h: one owner for one file descriptor.
//
// The descriptors QEMU passes (guest RAM, the irqfd pair) are owned by a
// UniqueFd from the moment recvmsg returns them, so an error path can never
// leak one.
//
//   UniqueFd fd(::memfd_create("ram", 0));
//   if (!fd) return error;
//   ::ftruncate(fd.get(), 4096);   // closed when fd goes out of scope
#pragma once

#include <unistd.h>

#include <utility>

namespace vmci::pcidev {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned descriptor.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace vmci::pcidev
