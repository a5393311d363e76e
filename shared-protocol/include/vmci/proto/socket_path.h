// socket_path.h: where hostpeer's control socket is, when nobody says.
#pragma once

#include <string>

namespace vmci::proto {

// $VMCI_HOSTPEER_SOCKET if set and not empty; else
// $XDG_RUNTIME_DIR/vmci-hostpeer.sock if XDG_RUNTIME_DIR is set; else
// /tmp/vmci-hostpeer-<uid>.sock.
std::string default_socket_path();

}  // namespace vmci::proto
