// preload_stream.h: vsock_preload_stream_64KiB, an ordinary C program
// streaming through vmci-vsock-run at both ends, beside the same program
// over a Unix stream socket.
//
// The program is preload_stream/stream_peer.c (vmci-bench-stream-peer): it
// knows nothing of this project, and uses read() and write() on a socket
// of the family it is given. Its receiver checks every byte against the
// stream's pattern, warms up, counts the bytes of its window and prints
// them; its sender writes until the receiver goes.
//
// - ours (run_trial): a hostpeer embedded in this process, on a socket in
//   a temp dir of its own (no vSockets of its own: the launcher's --host is
//   the host's). `vmci-vsock-run --host -- stream-peer recv vsock PORT`
//   on kConsumerCpu; once it says ready, `vmci-vsock-run --guest --
//   stream-peer send vsock 2 PORT` on kProducerCpu.
// - baseline (run_unix_trial): the same two programs over a Unix stream
//   socket on a path (`unix PATH`), on the same CPUs, without the launcher.
//
//   bench::PreloadStreamBench preload;
//   bench::Measurement m = preload.run_trial(params);  // params.chunk: 64 KiB
#pragma once

#include <memory>
#include <string>

#include "process.h"
#include "stream.h"

namespace vmci::host {
class HostPeer;
}

namespace bench {

class PreloadStreamBench {
 public:
  // Starts the embedded hostpeer; throws std::runtime_error if it cannot,
  // or if the launcher or the program is missing.
  PreloadStreamBench();
  ~PreloadStreamBench();
  PreloadStreamBench(const PreloadStreamBench&) = delete;
  PreloadStreamBench& operator=(const PreloadStreamBench&) = delete;

  Measurement run_trial(const StreamParams& params);
  Measurement run_unix_trial(const StreamParams& params);

 private:
  // Runs a receiver and, once it is ready, a sender; each command's first
  // word is the program to run.
  Measurement run_pair(const std::vector<std::string>& receiver,
                       const std::vector<std::string>& sender, const StreamParams& params);

  TempDir dir_;
  std::unique_ptr<vmci::host::HostPeer> hostpeer_;
  uint32_t next_port_ = 20000;
  int next_path_ = 0;
};

}  // namespace bench
