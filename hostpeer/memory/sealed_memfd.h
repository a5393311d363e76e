// sealed_memfd.h: the memory hostpeer shares: an anonymous memfd of a fixed
// size, sealed against growing and shrinking (so a peer that maps it cannot
// have it vanish under its mapping) and close-on-exec. Nothing has a name,
// so nothing outlives the processes that hold it.
#pragma once

#include <cstdint>
#include <string>

namespace vmci::host {

// A new memfd of `size` zero bytes; -1 with *error on failure.
int sealed_memfd(const char* name, uint64_t size, std::string* error);

}  // namespace vmci::host
