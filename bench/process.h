// process.h: the plumbing of a trial's two processes.
//
// A trial is a producer in a child process streaming to a consumer in this
// one. The child is this same binary, started with fork + exec (the parent
// has threads: nothing but exec runs after the fork), pinned to its own CPU,
// and killed if the parent dies. Besides the transport being measured, the
// two share a control page (a memfd inherited over exec by descriptor
// number) that starts nothing and carries no data: the consumer says stop,
// the producer says how many chunks it sent, the consumer says it has them.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "ring_paths.h"

namespace bench {

// CPUs of the two processes (round trips: the host side and the pinger on
// kConsumerCpu, the guest side and the ponger on kProducerCpu).
inline constexpr int kConsumerCpu = 0;
inline constexpr int kProducerCpu = 1;

// Pins the calling thread (and the threads it starts later) to `cpu`;
// throws std::runtime_error if it cannot.
void pin_to_cpu(int cpu);

// Widens the calling thread's CPU set to every CPU for a trial (the
// children and threads started meanwhile inherit it: bench's main thread
// is pinned to kConsumerCpu), and restores it afterwards. Throws
// std::runtime_error if it cannot.
class AllCpus {
 public:
  AllCpus();
  AllCpus(const AllCpus&) = delete;
  AllCpus& operator=(const AllCpus&) = delete;
  ~AllCpus();

 private:
  cpu_set_t saved_;
};

// "what: strerror(errno)".
std::string errno_text(const std::string& what);

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release();
  void reset();

 private:
  int fd_ = -1;
};

// A MAP_SHARED mapping of a whole descriptor.
class Mapping {
 public:
  // Maps `size` bytes of `fd` read-write; throws on failure.
  Mapping(int fd, size_t size);
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_;
  size_t size_;
};

// A zero-filled memfd of `size` bytes, close-on-exec; throws on failure.
UniqueFd make_memfd(const char* name, size_t size);
// The size of the file behind `fd`; throws on failure.
size_t fd_size(int fd);

// A `T` in shared memory: made by the parent (a new memfd, `T`
// constructed in it), or mapped by a child from the descriptor it
// inherited (which must be at least as large).
//
//   SharedPage<Board> board("vmci-bench-board");   // parent; board.fd() to the child
//   const SharedPage<Board> page(args.data_fd);    // child
template <typename T>
class SharedPage {
 public:
  static constexpr size_t kSize = (sizeof(T) + 4095) / 4096 * 4096;

  explicit SharedPage(const char* name)
      : fd_(make_memfd(name, kSize)), mapping_(fd_.get(), kSize) {
    new (mapping_.data()) T();
  }
  explicit SharedPage(int fd) : fd_(check_size(fd)), mapping_(fd, kSize) {}
  int fd() const { return fd_.get(); }
  T& get() const { return *reinterpret_cast<T*>(mapping_.data()); }

 private:
  static int check_size(int fd) {
    if (fd_size(fd) < kSize) throw std::runtime_error("a shared page smaller than its contents");
    return fd;
  }
  UniqueFd fd_;
  Mapping mapping_;
};

// The control page. Each field has one writer and its own cache line.
// Round-trip trials use `stop` (the parent: end now; children sleep on it
// with FUTEX_WAIT) and `ready` (the child is set up; a doorbell guest's
// handle is in peer_context:peer_resource).
struct Control {
  alignas(64) std::atomic<uint32_t> stop{0};           // consumer: stop producing
  alignas(64) std::atomic<uint32_t> done{0};           // producer: final_chunks is set
  uint64_t final_chunks = 0;                           // chunks the producer sent
  alignas(64) std::atomic<uint32_t> consumer_done{0};  // consumer: it has them all
  alignas(64) std::atomic<uint32_t> ready{0};          // round trips: the child is set up
  uint32_t peer_context = 0, peer_resource = 0;        // doorbell guest: its doorbell
  // Doorbell guest, from its callback: when the last one started (steady
  // clock, ns), and how long its doorbell_notify calls took in all.
  alignas(64) std::atomic<int64_t> callback_ns{0};
  std::atomic<int64_t> notify_calls{0}, notify_total_ns{0};
  // Doorbell round trips: the parent sets `timing` before its first timed
  // ring; the guest, before it exits, writes how its rings went from then
  // on (read once the guest has exited).
  alignas(64) std::atomic<uint32_t> timing{0};
  alignas(64) RingPaths guest_rings;
  // doorbell_ring_awake and its baseline. host_busy: the parent's owner is
  // awake and busy (a FUTEX_WAKE follows). guest_done: the child has rung
  // them all (a FUTEX_WAKE follows); guest_rings (all its rings) and the
  // time of the timed ones were written before it.
  alignas(64) std::atomic<uint32_t> host_busy{0};
  alignas(64) std::atomic<uint32_t> guest_done{0};
  uint64_t timed_rings = 0;  // all but the first
  int64_t timed_rings_ns = 0;
  // qp_setup_rate: cycles the child completed so far; the host side's
  // failures (first status, 0 if none).
  alignas(64) std::atomic<uint64_t> cycles{0};
  alignas(64) std::atomic<int64_t> host_failure{0};
};
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

class ControlPage {
 public:
  // A new page (parent side).
  ControlPage();
  // The page behind an inherited descriptor (child side).
  explicit ControlPage(int fd);
  int fd() const { return fd_.get(); }
  Control& get() const { return *reinterpret_cast<Control*>(mapping_.data()); }

 private:
  UniqueFd fd_;
  Mapping mapping_;
};

// The other process of a trial (a producer, a round-trip peer, a hostpeer).
class Child {
 public:
  // Starts /proc/self/exe with `args` (argv[1..]) after clearing
  // close-on-exec on `inherit` in the child only. Throws on failure.
  Child(const std::vector<std::string>& args, const std::vector<int>& inherit);
  // Starts another program: `path` with argv `path`, `args`, pinned to
  // `cpu`, its stdout into `stdout_fd` (-1: this process's), in a process
  // group of its own, which the destructor kills (the programs such a
  // child starts as well). Throws on failure.
  Child(const std::string& path, const std::vector<std::string>& args, int cpu, int stdout_fd);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // Kills and reaps the child if it was not waited for.
  ~Child();

  pid_t pid() const { return pid_; }
  // Throws if the child has exited (the caller still expected it to run).
  void check_running();
  // Waits for the child (at most `timeout_s`, then kills it) and throws
  // unless it exited with status 0.
  void wait_success(double timeout_s);

 private:
  std::string describe(int status) const;
  pid_t pid_ = -1;
  bool own_group_ = false;
  std::string what_;
};

// Called first in the child: dies with SIGKILL when `parent` does (and at
// once if it already has).
void die_with_parent(pid_t parent);

// A private directory under $TMPDIR (or /tmp), removed with what is in it.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace bench
