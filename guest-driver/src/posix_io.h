// posix_io.h: the few socket calls the driver makes, retrying EINTR and
// reporting errno with context.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vmci::guest::internal {

// "what: strerror(errno)".
std::string errno_message(const std::string& what);

// Connects a Unix stream socket to `path`; -1 with *error set on failure.
int connect_unix(const std::string& path, std::string* error);

// Reads exactly n bytes; false on end of file or error. Descriptors that
// come with the bytes (SCM_RIGHTS, close-on-exec) are appended to *fds
// when it is given, else closed.
bool read_exact(int fd, void* buf, size_t n, std::vector<int>* fds = nullptr);

// Writes all n bytes (no SIGPIPE); false on error.
bool write_all(int fd, const void* buf, size_t n);

// Waits until fd is readable or timeout_ms passes; false on timeout or error.
bool wait_readable(int fd, int timeout_ms);

}  // namespace vmci::guest::internal
