// ivshmem_test_client.h: QEMU's side of the ivshmem greeting, for tests:
// connect, read each message as hw/misc/ivshmem.c does (8 bytes, maybe one
// descriptor), keep what QEMU keeps.
//
//   UniqueFd qemu = connect_to(server->path());
//   Greeted g = read_greeting(qemu.get(), 3);   // checks every message
//   server->notify(1);                          // g.vectors[1] is readable
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace vmci::pcidev {

inline UniqueFd connect_to(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  return fd;
}

inline bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// One server message as QEMU reads it: 8 bytes little-endian, maybe a
// descriptor. False on EOF or timeout.
struct ServerMessage {
  int64_t value = 0;
  UniqueFd fd;
};
inline bool receive(int socket, ServerMessage* m) {
  if (!readable(socket, 2000)) return false;
  uint8_t bytes[8];
  iovec iov{bytes, sizeof(bytes)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC) != 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{bytes[i]} << (8 * i);
  m->value = static_cast<int64_t>(v);
  m->fd.reset();
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
      m->fd.reset(fd);
    }
  }
  return true;
}

// What QEMU keeps after the greeting.
struct Greeted {
  UniqueFd shm;
  std::vector<UniqueFd> vectors;
};
inline Greeted read_greeting(int socket, uint32_t vectors) {
  Greeted g;
  ServerMessage m;
  EXPECT_TRUE(receive(socket, &m));
  EXPECT_EQ(m.value, 0);  // version
  EXPECT_FALSE(m.fd);
  EXPECT_TRUE(receive(socket, &m));
  EXPECT_EQ(m.value, 0);  // our id
  EXPECT_FALSE(m.fd);
  EXPECT_TRUE(receive(socket, &m));
  EXPECT_EQ(m.value, -1);  // shared memory
  EXPECT_TRUE(m.fd);
  g.shm = std::move(m.fd);
  for (uint32_t k = 0; k < vectors; ++k) {
    SCOPED_TRACE(k);
    EXPECT_TRUE(receive(socket, &m));
    EXPECT_EQ(m.value, 0);  // our own id: interrupt setup for vector k
    EXPECT_TRUE(m.fd);
    g.vectors.push_back(std::move(m.fd));
  }
  return g;
}

}  // namespace vmci::pcidev
