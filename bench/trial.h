// trial.h: what the parent tells a trial's child on its command line, and
// the child's entry point that turns it back into a producer (streaming),
// a round-trip peer or a hostpeer.
//
//   vmci-bench --child TRANSPORT --parent PID --control-fd FD [--chunk BYTES]
//              [--data-fd FD] [--socket PATH --handle CTX:RID] [--rings N]
//              [--cpu N] [--port N] [--connections N] [--every-byte 1]
//              [--guest-index N]
//
// TRANSPORT: qpair, ring, socket (streaming producers, --chunk required;
// --every-byte 1: StreamParams::every_byte); datagram, seqpacket (datagram
// producers, --chunk: the payload size); qp-setup (a guest setting up
// pairs with the host datagram handle --handle), memfd-handshake (its
// baseline); scale-guest, scale-socket (scale_guests.h: --data-fd is the
// guest's board, --chunk required); doorbell (a guest answering doorbell
// rings; --handle is the host's doorbell), hostpeer (serves --socket until
// stopped), futex-pingpong, socket-pingpong (--chunk: the message size);
// doorbell-ringer (a guest ringing the host's doorbell --handle --rings
// times), raw-ringer (its baseline); vsock-stream (--chunk), vsock-rr
// (--chunk: the message size), vsock-connect, vsock-idle (--connections: a
// guest's vSockets to the host's --port: vsock_bench.h) and the baselines
// that only they have, unix-connect (--socket is the listening path) and
// unix-idle (vsock_baselines.h); many-guest, many-socket (many_guests.h:
// --data-fd is the roster, --guest-index the guest's entry, --chunk the
// storm's payload size). --cpu: the CPU to pin to (default
// kProducerCpu; -1: not pinned).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "process.h"

namespace bench {

struct ChildArgs {
  std::string transport;  // see above
  pid_t parent = 0;
  size_t chunk = 0;  // streaming; round trips: the message size
  int control_fd = -1;
  int data_fd = -1;         // ring, futex-pingpong: the memfd; socket(-pingpong): our end
  std::string socket_path;  // qpair, doorbell: hostpeer's socket; hostpeer: the one to serve
  uint32_t handle_context = 0, handle_resource = 0;  // qpair: the pair; doorbells: the host's
  uint64_t rings = 0;                                // doorbell-ringer, raw-ringer: how many
  int cpu = kProducerCpu;                            // -1: not pinned
  uint32_t port = 0;         // vsock-*: the host's listening port
  int connections = 0;       // vsock-idle: how many to hold
  bool every_byte = false;   // streaming: StreamParams::every_byte
  int guest_index = -1;      // many-guest, many-socket: its entry in the roster

  std::vector<std::string> to_command() const {
    std::vector<std::string> a{"--child",      transport, "--parent", std::to_string(parent),
                               "--control-fd", std::to_string(control_fd)};
    if (chunk > 0) a.insert(a.end(), {"--chunk", std::to_string(chunk)});
    if (data_fd >= 0) a.insert(a.end(), {"--data-fd", std::to_string(data_fd)});
    if (rings > 0) a.insert(a.end(), {"--rings", std::to_string(rings)});
    if (cpu != kProducerCpu) a.insert(a.end(), {"--cpu", std::to_string(cpu)});
    if (port != 0) a.insert(a.end(), {"--port", std::to_string(port)});
    if (connections > 0) a.insert(a.end(), {"--connections", std::to_string(connections)});
    if (every_byte) a.insert(a.end(), {"--every-byte", "1"});
    if (guest_index >= 0) a.insert(a.end(), {"--guest-index", std::to_string(guest_index)});
    if (!socket_path.empty()) a.insert(a.end(), {"--socket", socket_path});
    if (handle_context != 0 || handle_resource != 0) {
      a.insert(a.end(), {"--handle",
                         std::to_string(handle_context) + ":" + std::to_string(handle_resource)});
    }
    return a;
  }
};

// True if argv is a child's command line (it starts with --child).
bool is_child_command(int argc, char** argv);
// Runs the child of one trial. Returns its exit status.
int child_main(int argc, char** argv);

}  // namespace bench
