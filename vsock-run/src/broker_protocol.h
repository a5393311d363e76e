// broker_protocol.h: what the preload library (in every process of the
// program) and the broker (in vmci-vsock-run) say to each other. Each
// request is one SOCK_SEQPACKET message on a connection of its own to the
// broker's socket ($VMCI_VSOCK_BROKER); the answer is one message, with a
// descriptor attached (SCM_RIGHTS) when it makes one.
//
// A vSockets descriptor of the program is one end of a socketpair whose
// other end the broker holds: SOCK_STREAM for a stream socket (the bytes of
// the stream, pumped by the broker to and from the connection's queue
// pair), SOCK_SEQPACKET for a datagram socket (one message per datagram,
// each behind a DatagramHeader). The program's end is bound to an abstract
// name that says whose it is, so any process that holds the descriptor
// (after fork, dup or exec) knows it for a vSockets socket by asking the
// kernel its name: nothing about it lives only in one process's memory.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace vmci::vsock_run {

// The environment variables that name the broker's socket and its process
// (whose id is in the names of the program's ends).
inline constexpr const char* kBrokerEnv = "VMCI_VSOCK_BROKER";
inline constexpr const char* kBrokerPidEnv = "VMCI_VSOCK_BROKER_PID";

enum class Op : uint32_t {
  kSocket = 1,   // type: a new socket; answers its id and the program's end
  kBind,         // id, cid, port
  kListen,       // id, value = backlog
  kConnect,      // id, cid, port, flags & kNonBlocking (the program's end attached)
  kAccept,       // id: the next connection; answers its id, the peer, the end
  kLocalName,    // id: its own address
  kPeerName,     // id: its peer's address
  kShutdown,     // id, value = SHUT_RD, SHUT_WR or SHUT_RDWR
  kGetOption,    // id, level, name: value (SO_ERROR: the pending error, cleared)
  kSetOption,    // id, level, name, value
  kLocalCid,     // this endpoint's context id
  kSendTo,       // id, cid, port (kCidAny and kPortAny: the connected peer); the payload
                 // follows the request in its message; answers its size
};

// SOL_VSOCK (AF_VSOCK's option level) and its options, as <linux/vm_sockets.h>.
inline constexpr int kVsockLevel = 40;
inline constexpr int kBufferSize = 0;
inline constexpr int kBufferMinSize = 1;
inline constexpr int kBufferMaxSize = 2;
inline constexpr int kConnectTimeoutOld = 6;
inline constexpr int kConnectTimeoutNew = 8;
inline constexpr uint32_t kCidAny = 0xFFFFFFFF;
inline constexpr uint32_t kPortAny = 0xFFFFFFFF;

inline constexpr uint32_t kNonBlocking = 1;

struct Request {
  Op op;
  uint32_t flags;
  uint64_t id;
  uint32_t type;  // kSocket: SOCK_STREAM or SOCK_DGRAM
  uint32_t cid;
  uint32_t port;
  int32_t level;  // options
  int32_t name;
  uint32_t pad;
  uint64_t value;
};

struct Reply {
  int32_t result;  // >= 0, or a negated errno value
  uint32_t cid;
  uint32_t port;
  uint32_t pad;
  uint64_t id;
  uint64_t value;
};

// Before each datagram on a datagram socket's socketpair: to whom (from
// the program) or from whom (to the program).
struct DatagramHeader {
  uint32_t cid;
  uint32_t port;
};

// Room for one descriptor in a message's control data.
struct DescriptorControl {
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(int))] = {};
};

// Attaches `fd` (SCM_RIGHTS) to `msg`, in `control`; nothing for fd < 0.
inline void attach_descriptor(msghdr& msg, DescriptorControl& control, int fd) {
  if (fd < 0) return;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof control.bytes;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
}

// The descriptor a received `msg` carries, or -1.
inline int attached_descriptor(msghdr& msg) {
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    }
  }
  return fd;
}

// The abstract name of a program's end: "\0vmci-vsock/<broker pid>/<id>".
inline std::string end_name(long broker_pid, uint64_t id) {
  char text[64];
  const int n = std::snprintf(text, sizeof text, "%cvmci-vsock/%ld/%llu", '\0', broker_pid,
                              static_cast<unsigned long long>(id));
  return std::string(text, static_cast<size_t>(n));
}

// The socket id in an abstract name made by end_name() for `broker_pid`.
inline std::optional<uint64_t> id_of_end_name(const char* name, size_t length, long broker_pid) {
  char prefix[40];
  const int n = std::snprintf(prefix, sizeof prefix, "%cvmci-vsock/%ld/", '\0', broker_pid);
  if (n <= 0 || length <= static_cast<size_t>(n) || std::memcmp(name, prefix, n) != 0) {
    return std::nullopt;
  }
  uint64_t id = 0;
  for (size_t i = static_cast<size_t>(n); i < length; ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    id = id * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return id;
}

}  // namespace vmci::vsock_run
