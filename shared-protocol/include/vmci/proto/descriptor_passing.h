// descriptor_passing.h: descriptors passed with the control protocol's
// bytes over a Unix stream socket (SCM_RIGHTS), as frame.h carries them:
// with the first byte of a frame, their count in FrameHeader::flags.
//
//   ssize_t sent = send_with_descriptors(socket, frame, {memfd}, MSG_DONTWAIT);
//   // the rest of the frame, if sent < frame.size(), goes without them
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>

namespace vmci::proto {

// One sendmsg of `bytes` (not empty) with `fds` (at most
// kMaxFrameDescriptors) on its first byte; `flags` are sendmsg's, with
// MSG_NOSIGNAL added. Bytes sent, or -1 with errno (EINVAL for no bytes or
// too many descriptors; EINTR is the caller's to retry).
ssize_t send_with_descriptors(int socket, std::span<const uint8_t> bytes, std::span<const int> fds,
                              int flags);

}  // namespace vmci::proto
