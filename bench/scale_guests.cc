// scale_guests.cc: many guests streaming to one host (see scale_guests.h).
//
// Wake-ups (ours). Nobody spins, and nothing but the queue pairs and
// doorbells carries them: the rules are those of Linux's vsock "qstate"
// notifications, which need no shared flag between the two sides.
//
// - Room (host -> producer). A producer whose enqueue found its queue full
//   sleeps on its doorbell (stream j of a guest on the guest's doorbell
//   j % doorbells_per_guest). After each dequeue the host reads the free
//   space: if it equals what that dequeue took, the queue was full just
//   before it, so the producer may be asleep, and the host rings its
//   doorbell (once per visit). It rings only then, not after every dequeue:
//   at most one ring per visit to a full queue, none while producers keep
//   up with a host that is behind.
// - Data (producer -> host). After each enqueue the producer reads the
//   bytes ready: if they equal what that enqueue put in, the queue was
//   empty just before it, so the host may be asleep, and the producer rings
//   the host's one doorbell. The host sweeps every pair on one thread and
//   sleeps on that doorbell only when a sweep and a second look found every
//   queue empty: hostpeer and this process stay idle when nothing moves.
//
// Why no ring is lost: a waiter reads its doorbell's ring count before it
// looks at the queue and sleeps only while the count is unchanged. Between
// its own index store and its look at the peer's index each side makes a
// seq_cst fence, so of a producer that found the queue full and the host's
// next dequeue (or of a host that found every queue empty and a producer's
// next enqueue) at least one sees the other's store: either the waiter
// sees the room (data) and does not sleep, or the other side sees the full
// (empty) queue and rings. Only the consumer takes bytes, so the first
// dequeue after the producer saw the queue full finds it full. Waits time
// out (100 ms producers, 20 ms host, to check for stop and dead peers); a
// wait that timed out with work waiting and no ring 50 ms later counts as a
// missed wake-up, and the trial fails if there was any.
// The fences below order this file's handshakes between processes, which
// ThreadSanitizer cannot see; GCC warns that it does not model them.
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wtsan"
#endif

#include "scale_guests.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "endpoints.h"
#include "proc_status.h"
#include "rtt.h"
#include "thread_costs.h"
#include "stream.h"
#include "vmci/endpoint.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue.h"
#include "vmci/queue_pair.h"

namespace bench {
namespace {

using detail::Clock;
using std::chrono::milliseconds;

constexpr int kMaxStreamsPerGuest = 16;
constexpr int kMaxDoorbellsPerGuest = 16;
constexpr size_t kBoardSize = 4096;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// ---------------------------------------------------------------------------
// What a guest child and this process share.

// One stream's entry in its guest's board.
struct alignas(64) StreamSlot {
  vmci_handle pair{};             // ours: the pair (parent, before the child starts)
  int socket_fd = -1;             // socket: the child's end (parent, before the child starts)
  uint64_t final_chunks = 0;      // producer: chunks it sent, written before `done`
  std::atomic<uint32_t> done{0};  // producer: it stopped; final_chunks is set
};

// A guest's board: a memfd beside its control page (--data-fd). The parent
// writes the configuration before it starts the child; the child writes
// its doorbells before it says ready.
struct GuestBoard {
  uint32_t streams = 0, doorbells = 0;
  uint64_t queue_size = 0;
  vmci_handle host_doorbell{};                           // ours: the host's
  vmci_handle guest_doorbells[kMaxDoorbellsPerGuest]{};  // ours: the child's
  alignas(64) std::atomic<uint32_t> stop_streaming{0};   // parent: end after this chunk
  std::atomic<uint32_t> missed_wakeups{0};               // child: see the file comment
  StreamSlot slot[kMaxStreamsPerGuest];
};
static_assert(sizeof(GuestBoard) <= kBoardSize);

using BoardPage = SharedPage<GuestBoard>;

// ---------------------------------------------------------------------------
// Small pieces.

// A doorbell's rings as a count a thread can sleep on. The doorbell's
// callback calls rung(). A waiter reads now() before it looks at what it
// waits for, and sleeps only while the count still holds that value, so a
// ring that comes after the look is never lost.
class RingCount {
 public:
  void rung() {
    {
      std::lock_guard lock(mutex_);
      count_.fetch_add(1, std::memory_order_release);
    }
    changed_.notify_all();
  }
  uint64_t now() const { return count_.load(std::memory_order_acquire); }
  // True once the count is past `seen`; false if `timeout` passed first.
  bool wait_past(uint64_t seen, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return count_.load() != seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<uint64_t> count_{0};
};

// A pair allocated or attached through `endpoint`, detached when this ends.
struct PairAttachment {
  vmci::Endpoint* endpoint;
  std::unique_ptr<vmci::QueuePair> qp;
  ~PairAttachment() {
    if (qp) endpoint->qpair_detach(&qp);
  }
};

// Runs a child's thread body; an exception ends the whole child with
// status 1 (the parent sees it exit), after printing why.
void run_or_exit(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmci-bench child: %s\n", e.what());
    std::_Exit(1);
  }
}

// A chunk of stream.h's filler, to be stamped.
std::vector<uint8_t> filler(size_t chunk) {
  std::vector<uint8_t> buf(chunk);
  for (size_t i = 0; i < chunk; ++i) buf[i] = static_cast<uint8_t>(i * 131 + 7);
  return buf;
}

// ---------------------------------------------------------------------------
// The consumer's side, common to both transports.

// One stream's receiving end: gathers its bytes into chunks and checks each
// chunk's stamps as it completes; a mismatch throws, naming the stream.
class StreamCheck {
 public:
  StreamCheck(std::string name, size_t chunk) : name_(std::move(name)), buf_(chunk) {}
  uint8_t* space() { return buf_.data() + off_; }
  size_t room() const { return buf_.size() - off_; }
  // The next `n` bytes were written at space().
  void took(size_t n) {
    off_ += n;
    bytes_ += n;
    if (off_ < buf_.size()) return;
    try {
      detail::check_stamp(buf_.data(), buf_.size(), chunks_);
    } catch (const std::exception& e) {
      throw std::runtime_error(name_ + ": " + e.what());
    }
    ++chunks_;
    off_ = 0;
  }
  const std::string& name() const { return name_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t chunks() const { return chunks_; }
  bool between_chunks() const { return off_ == 0; }

 private:
  std::string name_;
  std::vector<uint8_t> buf_;
  size_t off_ = 0;
  uint64_t bytes_ = 0, chunks_ = 0;
};

// A guest child with its control page and board.
struct GuestProcess {
  ControlPage control;
  BoardPage board{"vmci-bench-board"};
  std::optional<Child> child;
};
using Guests = std::vector<std::unique_ptr<GuestProcess>>;

void check_params(const ScaleParams& p) {
  if (p.guests < 1 || p.pairs_per_guest < 1 || p.pairs_per_guest > kMaxStreamsPerGuest ||
      p.doorbells_per_guest < 1 || p.doorbells_per_guest > kMaxDoorbellsPerGuest || p.chunk < 16 ||
      p.queue_size < 2 || p.window_s <= 0 || p.idle_s < 0) {
    throw std::runtime_error("scale: bad parameters");
  }
}

// The guests' boards, configured; no child started yet.
Guests make_guests(const ScaleParams& p) {
  Guests guests;
  for (int g = 0; g < p.guests; ++g) {
    auto guest = std::make_unique<GuestProcess>();
    GuestBoard& board = guest->board.get();
    board.streams = static_cast<uint32_t>(p.pairs_per_guest);
    board.doorbells = static_cast<uint32_t>(p.doorbells_per_guest);
    board.queue_size = p.queue_size;
    guests.push_back(std::move(guest));
  }
  return guests;
}

// Starts guest `g`'s child as `transport`, with its control page, its board
// and `more` descriptors inherited, and waits until it says ready.
void start_guest(GuestProcess& g, const std::string& transport, const std::string& socket_path,
                 size_t chunk, std::vector<int> more = {}) {
  ChildArgs args;
  args.transport = transport;
  args.parent = ::getpid();
  args.chunk = chunk;
  args.control_fd = g.control.fd();
  args.data_fd = g.board.fd();
  args.socket_path = socket_path;
  args.cpu = -1;
  more.insert(more.end(), {g.control.fd(), g.board.fd()});
  g.child.emplace(args.to_command(), more);
}

std::vector<StreamCheck> make_checks(const ScaleParams& p) {
  std::vector<StreamCheck> checks;
  for (int g = 0; g < p.guests; ++g) {
    for (int j = 0; j < p.pairs_per_guest; ++j) {
      checks.emplace_back("stream " + std::to_string(g) + "." + std::to_string(j), p.chunk);
    }
  }
  return checks;
}

// Stops every guest child (it is idle by now) and waits for it to exit 0.
// Throws if one failed or reported a missed wake-up.
void finish_guests(Guests& guests) {
  for (auto& g : guests) stop_child(g->control.get());
  uint32_t missed = 0;
  for (auto& g : guests) {
    g->child->wait_success(30);
    missed += g->board.get().missed_wakeups.load();
  }
  if (missed > 0) {
    throw std::runtime_error("scale: producers missed " + std::to_string(missed) + " wake-ups");
  }
}

// Drives a trial's consumer through its phases and measures. `pump` is the
// transport: pump.pump(checks) takes what has arrived on every stream (into
// its StreamCheck, stream g * pairs_per_guest + j) and returns the bytes it
// moved; with nothing there it may sleep (under 0.1 s). `hostpeer`: ours'
// daemon, measured; null for the baseline.
template <typename Pump>
ScaleResult stream_and_measure(Pump& pump, std::vector<StreamCheck>& checks, Guests& guests,
                               const ScaleParams& p, Child* hostpeer) {
  const size_t n = checks.size();
  const size_t per_guest = static_cast<size_t>(p.pairs_per_guest);
  auto slot = [&](size_t s) -> StreamSlot& {
    return guests[s / per_guest]->board.get().slot[s % per_guest];
  };
  auto finished = [&](size_t s) {
    if (slot(s).done.load(std::memory_order_acquire) == 0) return false;
    if (checks[s].chunks() > slot(s).final_chunks) {
      throw std::runtime_error(checks[s].name() + ": more chunks than were sent");
    }
    return checks[s].chunks() == slot(s).final_chunks && checks[s].between_chunks();
  };

  // Progress per stream, for the stall check.
  std::vector<uint64_t> seen(n, 0);
  std::vector<Clock::time_point> progressed(n, Clock::now());
  Clock::time_point checked = Clock::now();
  auto check_children = [&] {  // hostpeer first: when it dies, the guests follow
    if (hostpeer) hostpeer->check_running();
    for (auto& g : guests) g->child->check_running();
  };
  auto pump_once = [&] {
    try {
      pump.pump(checks);
    } catch (const std::exception&) {
      check_children();  // a dead peer is the better reason (its pair reads NOTATTACHED)
      throw;
    }
    const auto now = Clock::now();
    for (size_t s = 0; s < n; ++s) {
      if (checks[s].bytes() != seen[s]) {
        seen[s] = checks[s].bytes();
        progressed[s] = now;
      }
    }
    if (now - checked < milliseconds(100)) return now;
    checked = now;
    check_children();
    for (size_t s = 0; s < n; ++s) {
      if (now - progressed[s] > seconds(p.stall_s) && !finished(s)) {
        throw std::runtime_error(checks[s].name() + ": no data for " + std::to_string(p.stall_s) +
                                 " s");
      }
    }
    return now;
  };
  auto bytes_now = [&] {
    std::vector<uint64_t> b(n);
    for (size_t s = 0; s < n; ++s) b[s] = checks[s].bytes();
    return b;
  };

  // Every stream under way, then the warm-up.
  while (!std::all_of(checks.begin(), checks.end(), [](auto& c) { return c.bytes() > 0; })) {
    pump_once();
  }
  for (const auto end = Clock::now() + seconds(p.warmup_s); pump_once() < end;) {
  }

  // The window; hostpeer's memory from its middle.
  ScaleResult r;
  ProcMemory memory;
  const auto start = Clock::now();
  const std::vector<uint64_t> before = bytes_now();
  bool sampled = false;
  auto now = start;
  while ((now = pump_once()) < start + seconds(p.window_s)) {
    if (hostpeer && !sampled && now >= start + seconds(p.window_s / 2)) {
      memory = read_memory(hostpeer->pid());
      sampled = true;
    }
  }
  const std::vector<uint64_t> after = bytes_now();
  const double window = detail::seconds_between(start, now);

  // Stop, and drain every stream to its last chunk.
  for (auto& g : guests) g->board.get().stop_streaming.store(1, std::memory_order_release);
  for (size_t s = 0; s < n;) {
    if (finished(s)) {
      ++s;
    } else {
      pump_once();
    }
  }

  uint64_t total = 0, least = UINT64_MAX;
  for (size_t s = 0; s < n; ++s) {
    total += after[s] - before[s];
    least = std::min(least, after[s] - before[s]);
  }
  r.streams = n;
  r.bytes_per_s = static_cast<double>(total) / window;
  r.min_stream_share =
      total ? static_cast<double>(least) * static_cast<double>(n) / static_cast<double>(total) : 0;
  if (!hostpeer) return r;
  r.hostpeer_rss_bytes = memory.rss;
  r.hostpeer_shmem_bytes = memory.shmem;
  r.hostpeer_rss_beyond_queue_memory = memory.anon + memory.file;

  // Idle: producers stopped (asleep, connected); hostpeer after a moment of quiet.
  std::this_thread::sleep_for(milliseconds(100));
  const IdleMeter idle(hostpeer->pid());
  std::this_thread::sleep_for(seconds(p.idle_s));
  const ThreadsCost cost = idle.cost();
  r.hostpeer_idle_cpu_s = cost.cpu_s;
  r.hostpeer_idle_wakeups = cost.switches;
  hostpeer->check_running();
  return r;
}

// ---------------------------------------------------------------------------
// Ours.

// The host connection's side of every pair: the device proxy's consumer.
class HostPump {
 public:
  struct Stream {
    vmci::QueuePair* qp;
    vmci_handle producer_doorbell;  // the guest doorbell its producer sleeps on
  };

  // `rings` counts the rings of the host's doorbell.
  HostPump(vmci::Endpoint& host, RingCount& rings, std::vector<Stream> streams, uint64_t queue_size)
      : host_(host), rings_(rings), streams_(std::move(streams)), queue_size_(queue_size) {}

  // One sweep over every pair; if it found nothing, sleeps on the host's
  // doorbell (20 ms at most). Returns the bytes moved.
  size_t pump(std::vector<StreamCheck>& checks) {
    const uint64_t seen = rings_.now();
    size_t moved = 0;
    for (size_t s = 0; s < streams_.size(); ++s) moved += drain(streams_[s], checks[s]);
    if (moved > 0 || any_ready()) return moved;
    if (!rings_.wait_past(seen, milliseconds(20)) && any_ready() &&
        !rings_.wait_past(seen, milliseconds(50))) {
      ++missed_;
    }
    return 0;
  }

  // Sweeps that found data waiting with no ring (see the file comment).
  uint64_t missed() const { return missed_; }

 private:
  // Takes at most one queue's worth from `s` (so that one fast producer
  // cannot hold the sweep), then rings its producer if a dequeue found the
  // queue full.
  size_t drain(const Stream& s, StreamCheck& check) {
    size_t taken = 0;
    bool was_full = false;
    while (taken < queue_size_) {
      const int64_t n = s.qp->dequeue(check.space(), check.room());
      if (n == VMCI_ERROR_QUEUEPAIR_NODATA) break;
      if (n <= 0) throw std::runtime_error(check.name() + ": host dequeue: " + result_text(n));
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (s.qp->consume_free_space() == n) was_full = true;
      check.took(static_cast<size_t>(n));
      taken += static_cast<size_t>(n);
    }
    if (was_full) {
      if (const int status = host_.doorbell_notify(s.producer_doorbell, 0); status < VMCI_SUCCESS) {
        throw std::runtime_error(check.name() + ": host doorbell_notify: " + result_text(status));
      }
    }
    return taken;
  }

  // The second look before sleeping: is anything waiting in any queue?
  bool any_ready() const {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return std::any_of(streams_.begin(), streams_.end(),
                       [](const Stream& s) { return s.qp->consume_buf_ready() > 0; });
  }

  vmci::Endpoint& host_;
  RingCount& rings_;
  const std::vector<Stream> streams_;
  const uint64_t queue_size_;
  uint64_t missed_ = 0;
};

// One stream of a guest child.
struct GuestStream {
  vmci::Endpoint& guest;
  vmci::QueuePair& qp;
  RingCount& room;  // the rings of the doorbell this producer sleeps on
  GuestBoard& board;
  StreamSlot& slot;
  size_t chunk;
};

// After an enqueue of `n` bytes: rings the host if the queue was empty
// before it (the host may be asleep).
void ring_host_if_was_empty(const GuestStream& s, int64_t n) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s.qp.produce_buf_ready() != n) return;
  if (const int status = s.guest.doorbell_notify(s.board.host_doorbell, 0); status < VMCI_SUCCESS) {
    throw std::runtime_error("guest doorbell_notify: " + result_text(status));
  }
}

// After an enqueue found the queue full: sleeps until the host rings (past
// `seen`) unless there is room already; 100 ms at most.
void wait_for_room(const GuestStream& s, uint64_t seen) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s.qp.produce_free_space() > 0) return;
  if (s.room.wait_past(seen, milliseconds(100))) return;
  if (s.qp.produce_free_space() > 0 && !s.room.wait_past(seen, milliseconds(50))) {
    s.board.missed_wakeups.fetch_add(1, std::memory_order_relaxed);
  }
}

// Enqueues stamped chunks until the board says stop (looked at between
// chunks), then publishes how many it sent.
void produce_into_pair(const GuestStream& s) {
  std::vector<uint8_t> buf = filler(s.chunk);
  uint64_t seq = 0;
  while (s.board.stop_streaming.load(std::memory_order_acquire) == 0) {
    detail::stamp(buf.data(), s.chunk, seq);
    for (size_t off = 0; off < s.chunk;) {
      const uint64_t seen = s.room.now();
      const int64_t n = s.qp.enqueue(buf.data() + off, s.chunk - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        ring_host_if_was_empty(s, n);
      } else if (n == VMCI_ERROR_QUEUEPAIR_NOSPACE) {
        wait_for_room(s, seen);
      } else {
        throw std::runtime_error("guest enqueue: " + result_text(n));
      }
    }
    ++seq;
  }
  s.slot.final_chunks = seq;
  s.slot.done.store(1, std::memory_order_release);
}

// ---------------------------------------------------------------------------
// The socket baseline.

// This process's ends of every stream's socket, read with one epoll loop.
class SocketPump {
 public:
  // `fds`: one per stream (nonblocking); `per_visit`: bytes at most from
  // one socket per wake-up, as HostPump takes at most one queue's worth.
  SocketPump(std::vector<int> fds, uint64_t per_visit)
      : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
        fds_(std::move(fds)),
        per_visit_(per_visit),
        events_(fds_.size()) {
    if (epoll_.get() < 0) throw std::runtime_error(errno_text("epoll_create1"));
    for (size_t s = 0; s < fds_.size(); ++s) {
      epoll_event ev{};
      ev.events = EPOLLIN;  // level-triggered: what is left over is reported again
      ev.data.u64 = s;
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fds_[s], &ev) != 0) {
        throw std::runtime_error(errno_text("epoll_ctl"));
      }
    }
  }

  // Waits (20 ms at most) for readable sockets and reads them. Returns the
  // bytes moved.
  size_t pump(std::vector<StreamCheck>& checks) {
    const int ready =
        ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), 20);
    if (ready < 0 && errno != EINTR) throw std::runtime_error(errno_text("epoll_wait"));
    size_t moved = 0;
    for (int e = 0; e < ready; ++e) {
      const size_t s = events_[static_cast<size_t>(e)].data.u64;
      moved += drain(fds_[s], checks[s]);
    }
    return moved;
  }

 private:
  size_t drain(int fd, StreamCheck& check) {
    size_t taken = 0;
    while (taken < per_visit_) {
      const ssize_t n = ::read(fd, check.space(), check.room());
      if (n > 0) {
        check.took(static_cast<size_t>(n));
        taken += static_cast<size_t>(n);
      } else if (n == 0) {
        throw std::runtime_error(check.name() + ": the producer closed its socket");
      } else if (errno == EAGAIN) {
        break;
      } else if (errno != EINTR) {
        throw std::runtime_error(errno_text(check.name() + ": read"));
      }
    }
    return taken;
  }

  UniqueFd epoll_;
  std::vector<int> fds_;
  uint64_t per_visit_;
  std::vector<epoll_event> events_;
};

// Writes stamped chunks into `fd` (blocking) until the board says stop
// (looked at between chunks), then publishes how many it sent.
void write_into_socket(int fd, GuestBoard& board, StreamSlot& slot, size_t chunk) {
  std::vector<uint8_t> buf = filler(chunk);
  uint64_t seq = 0;
  while (board.stop_streaming.load(std::memory_order_acquire) == 0) {
    detail::stamp(buf.data(), chunk, seq);
    for (size_t off = 0; off < chunk;) {
      const ssize_t n = ::write(fd, buf.data() + off, chunk - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (errno != EINTR) {
        throw std::runtime_error(errno_text("write"));
      }
    }
    ++seq;
  }
  slot.final_chunks = seq;
  slot.done.store(1, std::memory_order_release);
}

GuestBoard& child_board(const BoardPage& page) {
  GuestBoard& board = page.get();
  if (board.streams < 1 || board.streams > kMaxStreamsPerGuest || board.doorbells < 1 ||
      board.doorbells > kMaxDoorbellsPerGuest) {
    throw std::runtime_error("scale: bad board");
  }
  return board;
}

}  // namespace

ScaleResult run_scale_trial(const ScaleParams& p) {
  check_params(p);
  AllCpus unpinned;

  // The hostpeer daemon, and the host connection (the device proxy) with its doorbell.
  HostpeerDaemon hostpeer(-1);
  auto host = connect_driver(hostpeer.socket_path(), vmci::proto::Role::kHost);
  RingCount host_rings;
  DoorbellGuard host_doorbell{host.get()};
  if (const int status =
          host->doorbell_create(&host_doorbell.handle, 0, 0, [&host_rings] { host_rings.rung(); });
      status < VMCI_SUCCESS) {
    host_doorbell.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("host doorbell_create: " + result_text(status));
  }

  // Every pair, from the host; then the guests, which attach them.
  Guests guests = make_guests(p);
  std::vector<std::unique_ptr<PairAttachment>> pairs;
  for (auto& g : guests) {
    GuestBoard& board = g->board.get();
    board.host_doorbell = host_doorbell.handle;
    for (uint32_t j = 0; j < board.streams; ++j) {
      auto pair = std::make_unique<PairAttachment>(host.get());
      vmci_handle handle = VMCI_INVALID_HANDLE;
      const int status =
          host->qpair_alloc(&pair->qp, &handle, p.queue_size, p.queue_size, VMCI_INVALID_ID, 0, 0);
      if (status < VMCI_SUCCESS) {
        throw std::runtime_error("host qpair_alloc (pair " + std::to_string(pairs.size()) +
                                 "): " + result_text(status));
      }
      board.slot[j].pair = handle;
      pairs.push_back(std::move(pair));
    }
  }
  for (auto& g : guests) start_guest(*g, "scale-guest", hostpeer.socket_path(), p.chunk);
  for (auto& g : guests) wait_until_ready(g->control.get(), *g->child);

  std::vector<HostPump::Stream> streams;
  for (size_t s = 0; s < pairs.size(); ++s) {
    const GuestBoard& board = guests[s / static_cast<size_t>(p.pairs_per_guest)]->board.get();
    const size_t j = s % static_cast<size_t>(p.pairs_per_guest);
    streams.push_back({pairs[s]->qp.get(), board.guest_doorbells[j % board.doorbells]});
  }
  HostPump pump(*host, host_rings, std::move(streams), p.queue_size);
  std::vector<StreamCheck> checks = make_checks(p);
  ScaleResult r = stream_and_measure(pump, checks, guests, p, &hostpeer.child());
  r.queue_memory_bytes =
      r.streams * vmci::proto::queue_pair_layout(p.queue_size, p.queue_size).total;

  // Tear down: guests (they detach and exit), the host's pairs and
  // doorbell, the host connection, hostpeer.
  finish_guests(guests);
  if (pump.missed() > 0) {
    throw std::runtime_error("scale: the host missed " + std::to_string(pump.missed()) +
                             " wake-ups");
  }
  pairs.clear();
  host_doorbell.destroy();
  host.reset();
  hostpeer.stop(30);
  return r;
}

ScaleResult run_scale_socket_trial(const ScaleParams& p) {
  check_params(p);
  AllCpus unpinned;
  Guests guests = make_guests(p);
  std::vector<UniqueFd> mine;
  for (auto& g : guests) {
    GuestBoard& board = g->board.get();
    std::vector<UniqueFd> theirs;
    std::vector<int> inherit;
    for (uint32_t j = 0; j < board.streams; ++j) {
      int fds[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::runtime_error(errno_text("socketpair"));
      }
      mine.emplace_back(fds[0]);
      theirs.emplace_back(fds[1]);
      if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) throw std::runtime_error(errno_text("fcntl"));
      board.slot[j].socket_fd = fds[1];
      inherit.push_back(fds[1]);
    }
    start_guest(*g, "scale-socket", "", p.chunk, inherit);
    // `theirs` closes here: the child holds the only copies.
  }
  for (auto& g : guests) wait_until_ready(g->control.get(), *g->child);

  std::vector<int> fds;
  for (const UniqueFd& fd : mine) fds.push_back(fd.get());
  SocketPump pump(std::move(fds), p.queue_size);
  std::vector<StreamCheck> checks = make_checks(p);
  const ScaleResult r = stream_and_measure(pump, checks, guests, p, nullptr);
  finish_guests(guests);
  return r;
}

void scale_guest_child(const ChildArgs& args, Control& control) {
  const BoardPage page(args.data_fd);
  GuestBoard& board = child_board(page);
  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);

  // Doorbells before pairs: the host rings them as soon as a queue is full.
  // (Declared so: the pairs are detached first, then the doorbells
  // destroyed, then their ring counts go.)
  std::vector<std::unique_ptr<RingCount>> rooms;
  std::vector<std::unique_ptr<DoorbellGuard>> doorbells;
  for (uint32_t d = 0; d < board.doorbells; ++d) {
    RingCount* room = rooms.emplace_back(std::make_unique<RingCount>()).get();
    DoorbellGuard& doorbell = *doorbells.emplace_back(std::make_unique<DoorbellGuard>(guest.get()));
    const int status = guest->doorbell_create(&doorbell.handle, 0, 0, [room] { room->rung(); });
    if (status < VMCI_SUCCESS) {
      doorbell.handle = VMCI_INVALID_HANDLE;
      throw std::runtime_error("guest doorbell_create: " + result_text(status));
    }
    board.guest_doorbells[d] = doorbell.handle;
  }
  std::vector<std::unique_ptr<PairAttachment>> pairs;
  for (uint32_t j = 0; j < board.streams; ++j) {
    auto pair = std::make_unique<PairAttachment>(guest.get());
    vmci_handle handle = board.slot[j].pair;
    // The host's sizes, swapped (they are equal).
    const int status = guest->qpair_alloc(&pair->qp, &handle, board.queue_size, board.queue_size,
                                          VMCI_INVALID_ID, 0, 0);
    if (status < VMCI_SUCCESS)
      throw std::runtime_error("guest qpair_alloc: " + result_text(status));
    pairs.push_back(std::move(pair));
  }
  say_ready(control);

  std::vector<std::thread> producers;
  for (uint32_t j = 0; j < board.streams; ++j) {
    const GuestStream s{*guest, *pairs[j]->qp, *rooms[j % board.doorbells],
                        board,  board.slot[j], args.chunk};
    producers.emplace_back([s] { run_or_exit([&] { produce_into_pair(s); }); });
  }
  for (std::thread& t : producers) t.join();
  wait_for_stop(control, [] {});  // idle and connected until the parent is done
}

void scale_socket_child(const ChildArgs& args, Control& control) {
  const BoardPage page(args.data_fd);
  GuestBoard& board = child_board(page);
  say_ready(control);
  std::vector<std::thread> writers;
  for (uint32_t j = 0; j < board.streams; ++j) {
    StreamSlot& slot = board.slot[j];
    writers.emplace_back([&board, &slot, chunk = args.chunk] {
      run_or_exit([&] { write_into_socket(slot.socket_fd, board, slot, chunk); });
    });
  }
  for (std::thread& t : writers) t.join();
  wait_for_stop(control, [] {});
}

}  // namespace bench
