// fd_stream.h: a blocking stream socket (or pipe) descriptor as a
// messages.h channel. Does not own the descriptor.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "process.h"

namespace bench {

struct FdStream {
  int fd;

  // Writes all `size` bytes; throws std::runtime_error on failure.
  void write_all(const uint8_t* buf, size_t size) {
    for (size_t off = 0; off < size;) {
      const ssize_t n = ::write(fd, buf + off, size - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error(errno_text("write"));
      off += static_cast<size_t>(n);
    }
  }
  // Reads exactly `size` bytes; false if the stream ended before the
  // first. Throws std::runtime_error on failure or an end inside them.
  bool read_exactly(uint8_t* buf, size_t size) {
    for (size_t off = 0; off < size;) {
      const ssize_t n = ::read(fd, buf + off, size - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error(errno_text("read"));
      if (n == 0) {
        if (off == 0) return false;
        throw std::runtime_error("the stream ended inside a message");
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }
};

}  // namespace bench
