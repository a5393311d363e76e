// trial.h: what the parent tells a trial's child on its command line, and
// the child's entry point that turns it back into a producer.
//
//   vmci-bench --child TRANSPORT --parent PID --chunk BYTES --control-fd FD
//              [--data-fd FD] [--socket PATH --handle CTX:RID]
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench {

struct ChildArgs {
  std::string transport;  // "qpair", "ring" or "socket"
  pid_t parent = 0;
  size_t chunk = 0;
  int control_fd = -1;
  int data_fd = -1;                                  // ring: the memfd; socket: our end of the pair
  std::string socket_path;                           // qpair: hostpeer's socket
  uint32_t handle_context = 0, handle_resource = 0;  // qpair: the pair to attach to

  std::vector<std::string> to_command() const {
    std::vector<std::string> a{"--child",      transport,
                               "--parent",     std::to_string(parent),
                               "--chunk",      std::to_string(chunk),
                               "--control-fd", std::to_string(control_fd)};
    if (data_fd >= 0) a.insert(a.end(), {"--data-fd", std::to_string(data_fd)});
    if (!socket_path.empty()) {
      a.insert(a.end(), {"--socket", socket_path, "--handle",
                         std::to_string(handle_context) + ":" + std::to_string(handle_resource)});
    }
    return a;
  }
};

// True if argv is a child's command line (it starts with --child).
bool is_child_command(int argc, char** argv);
// Runs the child: the producer of one trial. Returns its exit status.
int child_main(int argc, char** argv);

}  // namespace bench
