// role.h: what a connection to hostpeer is: a guest (a context of its own)
// or the host (context 2, for trusted users).
//
//   vmci::guest::ConnectOptions options;
//   options.role = vmci::Role::kHost;
#pragma once

#include <cstdint>

namespace vmci {

// The values are those of the control channel's hello.
enum class Role : uint8_t { kGuest = 1, kHost = 2 };

}  // namespace vmci
