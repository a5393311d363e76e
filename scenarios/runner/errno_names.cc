#include "runner/errno_names.h"

#include <errno.h>
#include <string.h>

namespace vmci::scenario {
namespace {

// Linux's errno values are below 134; a little room for newer ones.
constexpr int kLastErrno = 200;

}  // namespace

std::optional<int> errno_from_name(std::string_view name) {
  // The C library names one value of each of these pairs.
  if (name == "EWOULDBLOCK") return EWOULDBLOCK;
  if (name == "ENOTSUP") return ENOTSUP;
  if (name == "EDEADLOCK") return EDEADLOCK;
  for (int value = 1; value <= kLastErrno; ++value) {
    const char* known = ::strerrorname_np(value);
    if (known != nullptr && name == known) return value;
  }
  return std::nullopt;
}

std::string errno_name(int value) {
  const char* known = ::strerrorname_np(value);
  return known != nullptr ? known : "errno " + std::to_string(value);
}

}  // namespace vmci::scenario
