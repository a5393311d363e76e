// trial.cc: the child's side of a trial: read the command line, die with
// the parent, pin to its CPU, then produce over the asked transport, answer
// round trips, or serve as hostpeer.
#include "trial.h"

#include <sys/prctl.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>

#include "datagram_rate.h"
#include "many_guests.h"
#include "doorbell_rtt.h"
#include "pingpong_baseline.h"
#include "qp_setup.h"
#include "qpair_throughput.h"
#include "ring_awake.h"
#include "ring_baseline.h"
#include "scale_guests.h"
#include "socket_baseline.h"
#include "vsock_baselines.h"
#include "vsock_bench.h"

namespace bench {
namespace {

ChildArgs parse(int argc, char** argv) {
  ChildArgs a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const std::string value = argv[i + 1];
    if (key == "--child") {
      a.transport = value;
    } else if (key == "--parent") {
      a.parent = static_cast<pid_t>(std::stol(value));
    } else if (key == "--chunk") {
      a.chunk = std::stoul(value);
    } else if (key == "--control-fd") {
      a.control_fd = std::stoi(value);
    } else if (key == "--data-fd") {
      a.data_fd = std::stoi(value);
    } else if (key == "--socket") {
      a.socket_path = value;
    } else if (key == "--handle") {
      const auto colon = value.find(':');
      a.handle_context = static_cast<uint32_t>(std::stoul(value.substr(0, colon)));
      a.handle_resource = static_cast<uint32_t>(std::stoul(value.substr(colon + 1)));
    } else if (key == "--rings") {
      a.rings = std::stoull(value);
    } else if (key == "--cpu") {
      a.cpu = std::stoi(value);
    } else if (key == "--port") {
      a.port = static_cast<uint32_t>(std::stoul(value));
    } else if (key == "--connections") {
      a.connections = std::stoi(value);
    } else if (key == "--every-byte") {
      a.every_byte = value == "1";
    } else if (key == "--guest-index") {
      a.guest_index = std::stoi(value);
    } else {
      throw std::runtime_error("unknown child option " + key);
    }
  }
  const bool streaming = a.transport == "qpair" || a.transport == "ring" ||
                         a.transport == "socket" || a.transport.starts_with("datagram") ||
                         a.transport == "seqpacket" || a.transport.starts_with("scale-") ||
                         a.transport == "vsock-stream";
  const bool answering = a.transport == "socket-pingpong" || a.transport == "vsock-rr";
  const bool ringing = a.transport == "doorbell-ringer" || a.transport == "raw-ringer";
  const bool vsock = a.transport.starts_with("vsock-");
  if (a.parent <= 0 || a.control_fd < 0 || (streaming && a.chunk < 16) ||
      (answering && a.chunk < 1) || (ringing && a.rings < 2) ||
      (vsock && (a.port == 0 || a.socket_path.empty())) ||
      (a.transport == "vsock-idle" && a.connections < 1) ||
      (a.transport.starts_with("many-") && (a.guest_index < 0 || a.data_fd < 0 || a.chunk < 16))) {
    throw std::runtime_error("incomplete child command");
  }
  return a;
}

// The child's name in ps and perf (not "exe"); the threads it starts later
// inherit it.
const char* process_name(const std::string& transport) {
  if (transport == "doorbell" || transport == "doorbell-ringer" || transport == "scale-guest" ||
      transport == "many-guest" || transport.starts_with("vsock-")) {
    return "vmci-bench-gst";
  }
  if (transport == "hostpeer") return "vmci-bench-hp";
  if (transport == "raw-ringer") return "vmci-bench-ring";
  if (transport.ends_with("-pingpong")) return "vmci-bench-pong";
  return "vmci-bench-prod";
}

}  // namespace

bool is_child_command(int argc, char** argv) {
  return argc > 1 && std::strcmp(argv[1], "--child") == 0;
}

int child_main(int argc, char** argv) {
  try {
    const ChildArgs args = parse(argc, argv);
    die_with_parent(args.parent);
    ::prctl(PR_SET_NAME, process_name(args.transport));
    if (args.cpu >= 0) pin_to_cpu(args.cpu);  // before the guest driver starts its threads
    ControlPage control(args.control_fd);
    if (args.transport == "qpair") {
      qpair_child(args, control.get());
    } else if (args.transport == "ring") {
      ring_child(args, control.get());
    } else if (args.transport == "socket") {
      socket_child(args, control.get());
    } else if (args.transport == "datagram") {
      datagram_child(args, control.get());
    } else if (args.transport == "datagram-from-host") {
      host_datagram_child(args, control.get());
    } else if (args.transport == "seqpacket") {
      seqpacket_child(args, control.get());
    } else if (args.transport == "qp-setup") {
      qp_setup_child(args, control.get());
    } else if (args.transport == "memfd-handshake") {
      memfd_handshake_child(args, control.get());
    } else if (args.transport == "doorbell") {
      doorbell_guest_child(args, control.get());
    } else if (args.transport == "doorbell-ringer") {
      doorbell_ringer_child(args, control.get());
    } else if (args.transport == "raw-ringer") {
      raw_ringer_child(args, control.get());
    } else if (args.transport == "hostpeer") {
      hostpeer_child(args, control.get());
    } else if (args.transport == "futex-pingpong") {
      futex_pingpong_child(args, control.get());
    } else if (args.transport == "socket-pingpong") {
      socket_pingpong_child(args, control.get());
    } else if (args.transport == "scale-guest") {
      scale_guest_child(args, control.get());
    } else if (args.transport == "scale-socket") {
      scale_socket_child(args, control.get());
    } else if (args.transport == "many-guest") {
      many_guest_child(args, control.get());
    } else if (args.transport == "many-socket") {
      many_socket_child(args, control.get());
    } else if (args.transport == "vsock-stream") {
      vsock_stream_child(args, control.get());
    } else if (args.transport == "vsock-rr") {
      vsock_rr_child(args, control.get());
    } else if (args.transport == "vsock-connect") {
      vsock_connect_child(args, control.get());
    } else if (args.transport == "vsock-idle") {
      vsock_idle_child(args, control.get());
    } else if (args.transport == "unix-connect") {
      unix_connect_child(args, control.get());
    } else if (args.transport == "unix-idle") {
      unix_idle_child(args, control.get());
    } else {
      throw std::runtime_error("unknown transport " + args.transport);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmci-bench child: %s\n", e.what());
    return 1;
  }
}

}  // namespace bench
