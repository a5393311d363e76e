// socket_baseline.h: baseline B, a Unix-domain stream socketpair carrying
// the same chunks with plain blocking write() and read() loops: what the
// kernel's own local byte stream costs. The child inherits its end over
// exec; default socket buffer sizes.
#pragma once

#include "stream.h"
#include "trial.h"

namespace bench {

// Parent: one trial, the child writing, this process reading.
Measurement run_socket_trial(const StreamParams& params);
// Child: writes into the socket args.data_fd.
void socket_child(const ChildArgs& args, Control& control);

}  // namespace bench
