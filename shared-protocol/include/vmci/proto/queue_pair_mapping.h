// queue_pair_mapping.h: an endpoint's QueuePair over the memory hostpeer
// passed for it (spec §6.3, §6.5).
//
// A guest endpoint sees the pair as hostpeer lays it out (its produce queue
// first); a host endpoint sees it swapped, and has the status page that
// says whether the guest's memory is there.
//
//   auto qp = map_queue_pair(handle, fds[0], -1, 65536, 65536, &error);   // a guest
//   auto qp = map_queue_pair(handle, fds[0], fds[1], 65536, 65536, &error);  // a host
#pragma once

#include <memory>
#include <string>

#include "vmci/queue_pair.h"

namespace vmci::proto {

// Sizes from the endpoint's own view. `status_fd` -1: a guest endpoint.
// The descriptors stay the caller's. Null with *error on failure.
std::unique_ptr<QueuePair> map_queue_pair(vmci_handle handle, int queue_fd, int status_fd,
                                          uint64_t produce_size, uint64_t consume_size,
                                          std::string* error);

}  // namespace vmci::proto
