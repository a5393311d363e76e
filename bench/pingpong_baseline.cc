// pingpong_baseline.cc: the futex and socketpair ping-pongs (see
// pingpong_baseline.h).
#include "pingpong_baseline.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <new>
#include <stdexcept>
#include <vector>

#include "fd_stream.h"
#include "futex.h"
#include "messages.h"

namespace bench {
namespace {

struct PingPongWords {
  alignas(128) std::atomic<uint32_t> ping{0};  // written by the pinger (this process)
  alignas(128) std::atomic<uint32_t> pong{0};  // written by the ponger (the child)
};
constexpr size_t kWordsSize = 4096;
static_assert(sizeof(PingPongWords) <= kWordsSize);

// Sleeps on `word` until it holds `want`. Only when a wait ends without it
// (a timeout, or a spurious wake-up) does it look at the clock and the child.
void wait_for_value(std::atomic<uint32_t>& word, uint32_t want, Child& child, double stall_s) {
  std::chrono::steady_clock::time_point since{};
  for (;;) {
    const uint32_t seen = word.load(std::memory_order_acquire);
    if (seen == want) return;
    futex_wait(word, seen, std::chrono::milliseconds(50));
    if (word.load(std::memory_order_acquire) == want) return;
    const auto now = std::chrono::steady_clock::now();
    if (since == std::chrono::steady_clock::time_point{}) since = now;
    child.check_running();
    if (std::chrono::duration<double>(now - since).count() > stall_s) {
      throw std::runtime_error("futex ping-pong: no answer for " + std::to_string(stall_s) + " s");
    }
  }
}

}  // namespace

RttResult run_futex_pingpong_trial(const RttParams& params) {
  ControlPage control;
  UniqueFd memory_fd = make_memfd("vmci-bench-futex", kWordsSize);
  Mapping memory(memory_fd.get(), kWordsSize);
  auto* words = new (memory.data()) PingPongWords();

  ChildArgs args;
  args.transport = "futex-pingpong";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.data_fd = memory_fd.get();
  Child child(args.to_command(), {control.fd(), memory_fd.get()});
  wait_until_ready(control.get(), child);

  uint32_t n = 0;
  const RttResult r = time_round_trips(
      params, {{"pinger", ::getpid()}, {"ponger", child.pid()}}, [&] {
        ++n;
        words->ping.store(n, std::memory_order_release);
        futex_wake(words->ping);
        wait_for_value(words->pong, n, child, params.stall_s);
      });
  control.get().stop.store(1, std::memory_order_release);
  futex_wake(words->ping);  // the child sleeps on ping
  child.wait_success(30);
  return r;
}

void futex_pingpong_child(const ChildArgs& args, Control& control) {
  if (fd_size(args.data_fd) < kWordsSize) throw std::runtime_error("futex words too small");
  Mapping memory(args.data_fd, kWordsSize);
  auto* words = reinterpret_cast<PingPongWords*>(memory.data());
  say_ready(control);
  uint32_t seen = 0;
  for (;;) {
    const uint32_t ping = words->ping.load(std::memory_order_acquire);
    if (ping == seen) {
      if (control.stop.load(std::memory_order_acquire) != 0) return;
      futex_wait(words->ping, seen, std::chrono::milliseconds(100));
      continue;
    }
    seen = ping;
    words->pong.store(ping, std::memory_order_release);
    futex_wake(words->pong);
  }
}

RttResult run_socket_pingpong_trial(const RttParams& params, size_t message) {
  if (message < 1 || message > kMaxMessage) throw std::runtime_error("bad ping-pong message size");
  ControlPage control;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(errno_text("socketpair"));
  }
  UniqueFd mine(fds[0]);
  UniqueFd theirs(fds[1]);

  ChildArgs args;
  args.transport = "socket-pingpong";
  args.parent = ::getpid();
  args.control_fd = control.fd();
  args.data_fd = theirs.get();
  args.chunk = message;
  Child child(args.to_command(), {control.fd(), theirs.get()});
  theirs.reset();  // so that the child's end closing ends our reads
  wait_until_ready(control.get(), child);

  FdStream channel{mine.get()};
  std::vector<uint8_t> buf(message);
  uint64_t round = 0;
  const RttResult r =
      time_round_trips(params, {{"pinger", ::getpid()}, {"ponger", child.pid()}},
                       [&] { ask(channel, buf, ++round); });
  ::shutdown(mine.get(), SHUT_WR);  // the child reads the end of the stream and exits
  child.wait_success(30);
  return r;
}

void socket_pingpong_child(const ChildArgs& args, Control& control) {
  say_ready(control);
  FdStream channel{args.data_fd};
  answer_until_end(channel, args.chunk);
}

}  // namespace bench
