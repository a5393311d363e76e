// guest_mode.h: what a soak guest process does (vmci-soak --guest ...):
// one guest context at a time, driven line by line on stdin by the soak,
// answering one line per command on stdout:
//
//   connect CID|-        -> "hello CID DOORBELL_RID DATAGRAM_RID"
//   qp CTX:RID PRODUCE CONSUME SEED_OUT SEED_IN CHUNK_SEED SESSION
//                        -> "attached": attached to the host's pair (sizes
//                           are this guest's view) and streaming both ways,
//                           sending stamped datagrams to the host's handle
//                           and ringing the host's doorbell, all at once
//   stop                 -> "stopped WROTE DATAGRAMS NO_RESOURCES RINGS": the
//                           stream writer, datagrams and rings stopped (after
//                           at least one ring and one doorbell callback)
//   drain BYTES          -> "done READ CALLBACKS": read and checked the
//                           host's BYTES, detached, disconnected cleanly
//   exit                 -> the process exits 0
//
// Anything wrong (a byte that differs, a send result other than the
// datagram's size or VMCI_ERROR_NO_RESOURCES, a failed ring) prints
// "error WHAT" and exits 1 at once, from whichever thread saw it.
#pragma once

#include <string>

namespace vmci::soak {

struct GuestModeOptions {
  std::string socket;
  std::string host_datagram;  // CTX:RID
  std::string host_doorbell;  // CTX:RID
  uint64_t seed = 0;
};

int run_guest_mode(const GuestModeOptions& options);

}  // namespace vmci::soak
