// preload_stream.cc: vsock_preload_stream_64KiB (see preload_stream.h).
#include "preload_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "endpoints.h"
#include "vmci/host/hostpeer.h"

namespace bench {
namespace {

// The build tree's launcher and program (vmci-bench is not installed).
constexpr const char* kVsockRun = VMCI_BENCH_VSOCK_RUN;
constexpr const char* kStreamPeer = VMCI_BENCH_STREAM_PEER;

void require_program(const char* path) {
  if (::access(path, X_OK) != 0) throw std::runtime_error(errno_text(path));
}

// One line of what `fd` carries (without its newline), waiting at most
// `timeout_s`; throws if `child` ends first or the line does not come.
std::string read_line(int fd, Child& child, double timeout_s) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string line;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, 50);
    if (ready < 0 && errno != EINTR) throw std::runtime_error(errno_text("poll"));
    if (ready > 0) {
      char c;
      const ssize_t n = ::read(fd, &c, 1);
      if (n == 1 && c == '\n') return line;
      if (n == 1) {
        line += c;
        continue;
      }
      if (n == 0) child.check_running();  // its stdout closed: it is ending
    } else {
      child.check_running();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("no line from the receiver within " + std::to_string(timeout_s) +
                               " s (got \"" + line + "\")");
    }
  }
}

}  // namespace

PreloadStreamBench::PreloadStreamBench() : hostpeer_(start_hostpeer(dir_.path() + "/hp.sock")) {
  require_program(kVsockRun);
  require_program(kStreamPeer);
}

PreloadStreamBench::~PreloadStreamBench() = default;

Measurement PreloadStreamBench::run_trial(const StreamParams& params) {
  const std::string port = std::to_string(next_port_++);
  const std::string chunk = std::to_string(params.chunk);
  const std::vector<std::string> launcher = {kVsockRun, "--socket", hostpeer_->socket_path()};
  std::vector<std::string> receiver = launcher, sender = launcher;
  receiver.insert(receiver.end(), {"--host", "--", kStreamPeer, "recv", "vsock", port, chunk,
                                   std::to_string(params.warmup_s),
                                   std::to_string(params.window_s)});
  sender.insert(sender.end(), {"--guest", "--", kStreamPeer, "send", "vsock", "2", port, chunk});
  return run_pair(receiver, sender, params);
}

Measurement PreloadStreamBench::run_unix_trial(const StreamParams& params) {
  const std::string path = dir_.path() + "/stream" + std::to_string(next_path_++) + ".sock";
  const std::string chunk = std::to_string(params.chunk);
  return run_pair({kStreamPeer, "recv", "unix", path, chunk, std::to_string(params.warmup_s),
                   std::to_string(params.window_s)},
                  {kStreamPeer, "send", "unix", path, chunk}, params);
}

Measurement PreloadStreamBench::run_pair(const std::vector<std::string>& receiver,
                                         const std::vector<std::string>& sender,
                                         const StreamParams& params) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  UniqueFd from_receiver(pipe_fds[0]);
  UniqueFd receiver_stdout(pipe_fds[1]);
  Child recv_child(receiver[0], {receiver.begin() + 1, receiver.end()}, kConsumerCpu,
                   receiver_stdout.get());
  receiver_stdout.reset();  // the receiver's end is its own now
  const std::string ready = read_line(from_receiver.get(), recv_child, 10);
  if (ready != "ready") throw std::runtime_error("the receiver said \"" + ready + "\"");
  Child send_child(sender[0], {sender.begin() + 1, sender.end()}, kProducerCpu, -1);
  const std::string result =
      read_line(from_receiver.get(), recv_child, params.warmup_s + params.window_s + params.stall_s);
  unsigned long long bytes = 0;
  long long ns = 0;
  if (std::sscanf(result.c_str(), "%llu %lld", &bytes, &ns) != 2 || ns <= 0) {
    throw std::runtime_error("the receiver said \"" + result + "\"");
  }
  recv_child.wait_success(params.stall_s);
  send_child.wait_success(params.stall_s);
  Measurement m;
  m.bytes = bytes;
  m.chunks = bytes / params.chunk;
  m.seconds = static_cast<double>(ns) / 1e9;
  return m;
}

}  // namespace bench
