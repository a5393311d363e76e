#include "vmci/proto/descriptor_passing.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "vmci/proto/frame.h"

namespace vmci::proto {

ssize_t send_with_descriptors(int socket, std::span<const uint8_t> bytes, std::span<const int> fds,
                              int flags) {
  if (bytes.empty() || fds.size() > kMaxFrameDescriptors) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFrameDescriptors)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &msg, flags | MSG_NOSIGNAL);
}

}  // namespace vmci::proto
