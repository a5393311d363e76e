#include "vmci/proto/socket_path.h"

#include <unistd.h>

#include <cstdlib>

namespace vmci::proto {

std::string default_socket_path() {
  if (const char* named = std::getenv("VMCI_HOSTPEER_SOCKET"); named && *named) return named;
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    return std::string(runtime) + "/vmci-hostpeer.sock";
  }
  return "/tmp/vmci-hostpeer-" + std::to_string(getuid()) + ".sock";
}

}  // namespace vmci::proto
