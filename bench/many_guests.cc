// many_guests.cc: a thousand guests against one host connection (see
// many_guests.h).
#include "many_guests.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "endpoints.h"
#include "futex.h"
#include "proc_status.h"
#include "rtt.h"
#include "thread_costs.h"
#include "vmci/endpoint.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue.h"
#include "vmci/queue_pair.h"

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

// ---------------------------------------------------------------------------
// The roster: one memfd that every guest child and this process map.

// How far a guest has come; each stage's fields are written before it.
enum Stage : uint32_t {
  kStarted = 1,    // mapped the roster, waiting for the go
  kSetUp = 2,      // connected, pair attached, doorbell created: doorbell, set_up_ns
  kRang = 3,       // heard the host's ring, rang the host twice: second_ring
  kStormDone = 4,  // stopped sending: sent
};

struct alignas(64) RosterEntry {
  vmci_handle pair{};      // ours: parent, before the child starts
  vmci_handle doorbell{};  // ours: the guest's
  int64_t set_up_ns = 0;   // steady clock
  uint64_t sent = 0;       // storm datagrams the guest was told were sent
  RingPaths second_ring;   // ours: how its second ring to the host went
  std::atomic<uint32_t> stage{0};
};

struct Roster {
  alignas(64) std::atomic<uint32_t> go{0};     // parent: connect and set up now
  alignas(64) std::atomic<uint32_t> storm{0};  // parent: 1 send, 2 stop sending
  vmci_handle host_doorbell{}, host_datagrams{};  // ours
  uint64_t queue_size = 0;
  RosterEntry entry[kMaxManyGuests];
};

using RosterPage = SharedPage<Roster>;

// Child: sleeps until `word` is not 0, or the parent says stop (false).
bool wait_for_word(std::atomic<uint32_t>& word, Control& control) {
  while (word.load(std::memory_order_acquire) == 0) {
    if (control.stop.load(std::memory_order_acquire) != 0) return false;
    futex_wait(word, 0, milliseconds(100));
  }
  return true;
}

void enter_stage(RosterEntry& me, Stage stage) { me.stage.store(stage, std::memory_order_release); }

// ---------------------------------------------------------------------------
// The storm's datagrams: payload bytes 0-3 the sender's index, 4-7 its
// complement, 8-15 the sender's sequence number, the rest filler.

void stamp_payload(uint8_t* payload, uint32_t index, uint64_t seq) {
  const uint32_t complement = ~index;
  std::memcpy(payload, &index, 4);
  std::memcpy(payload + 4, &complement, 4);
  std::memcpy(payload + 8, &seq, 8);
}

// The host side's check of every storm datagram: well formed, from a known
// guest, in order per guest. One thread at a time calls take() (the host
// endpoint's delivery thread, or the baseline's server thread).
class StormCheck {
 public:
  StormCheck(int guests, size_t payload) : next_(static_cast<size_t>(guests), 0), payload_(payload) {}

  void take(const uint8_t* payload, size_t size) {
    uint32_t index = 0, complement = 0;
    uint64_t seq = 0;
    if (size != payload_) return fail("a datagram of " + std::to_string(size) + " bytes");
    std::memcpy(&index, payload, 4);
    std::memcpy(&complement, payload + 4, 4);
    std::memcpy(&seq, payload + 8, 8);
    if (complement != ~index || index >= next_.size()) return fail("a datagram from no guest");
    if (seq != next_[index]) {
      return fail("guest " + std::to_string(index) + ": datagram " + std::to_string(seq) +
                  " where " + std::to_string(next_[index]) + " was due");
    }
    ++next_[index];
    received_.fetch_add(1, std::memory_order_release);
  }

  uint64_t received() const { return received_.load(std::memory_order_acquire); }
  // Throws the first failure seen, if any.
  void check() const {
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) throw std::runtime_error("storm: " + failure_);
  }

 private:
  void fail(const std::string& what) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = what;
  }

  std::vector<uint64_t> next_;
  const size_t payload_;
  std::atomic<uint64_t> received_{0};
  mutable std::mutex mutex_;
  std::string failure_;
};

// ---------------------------------------------------------------------------
// The parent's side of the guests, common to both trials.

struct GuestProcess {
  ControlPage control;
  std::optional<Child> child;
};

class GuestFleet {
 public:
  GuestFleet(const ManyGuestsParams& p, const RosterPage& roster)
      : p_(p), roster_(roster), guests_(static_cast<size_t>(p.guests)) {}

  // Starts every child; `hostpeer`, if any, is checked while waiting.
  void start(const std::string& transport, const std::string& socket_path, Child* hostpeer) {
    hostpeer_ = hostpeer;
    for (size_t i = 0; i < guests_.size(); ++i) {
      auto& g = guests_[i] = std::make_unique<GuestProcess>();
      ChildArgs args;
      args.transport = transport;
      args.parent = ::getpid();
      args.chunk = p_.payload;
      args.control_fd = g->control.fd();
      args.data_fd = roster_.fd();
      args.guest_index = static_cast<int>(i);
      args.socket_path = socket_path;
      args.cpu = -1;
      g->child.emplace(args.to_command(), std::vector<int>{g->control.fd(), roster_.fd()});
    }
  }

  // Sleeps until every guest reached `stage`; throws if a child dies or
  // one has not after p.stall_s, naming it.
  void wait_for(Stage stage, const char* what) {
    const auto give_up = Clock::now() + std::chrono::duration<double>(p_.stall_s);
    for (size_t next = 0;;) {
      while (next < guests_.size() &&
             roster_.get().entry[next].stage.load(std::memory_order_acquire) >= stage) {
        ++next;
      }
      if (next == guests_.size()) return;
      check_running();
      if (Clock::now() > give_up) {
        throw std::runtime_error("guest " + std::to_string(next) + " did not " + what + " in " +
                                 std::to_string(p_.stall_s) + " s");
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  void check_running() {
    for (auto& g : guests_) g->child->check_running();
    if (hostpeer_) hostpeer_->check_running();
  }

  // Tells every child to end, and waits for each to exit 0.
  void finish() {
    for (auto& g : guests_) stop_child(g->control.get());
    for (auto& g : guests_) g->child->wait_success(60);
  }

 private:
  const ManyGuestsParams& p_;
  const RosterPage& roster_;
  std::vector<std::unique_ptr<GuestProcess>> guests_;
  Child* hostpeer_ = nullptr;
};

void check_params(const ManyGuestsParams& p) {
  if (p.guests < 1 || p.guests > kMaxManyGuests || p.payload < 16 || p.queue_size < 4096 ||
      p.window_s <= 0 || p.idle_s < 0) {
    throw std::runtime_error("scale_1024_guests: bad parameters");
  }
}

// Go: every guest connects and sets up at once. Returns the seconds from
// the go to the last guest set up.
double time_setup(GuestFleet& fleet, Roster& roster, int guests) {
  fleet.wait_for(kStarted, "start");
  const int64_t go_ns = now_ns();
  roster.go.store(1, std::memory_order_release);
  futex_wake(roster.go, INT_MAX);
  fleet.wait_for(kSetUp, "connect and set up");
  int64_t last = go_ns;
  for (int i = 0; i < guests; ++i) last = std::max(last, roster.entry[i].set_up_ns);
  return static_cast<double>(last - go_ns) / 1e9;
}

// The storm: every guest sends until told to stop; the rate is what
// `check` received per second over the window, after the warm-up. Then
// every datagram a guest was told was sent must arrive (30 s at most).
void run_storm(GuestFleet& fleet, Roster& roster, const StormCheck& check,
               const ManyGuestsParams& p, ManyGuestsResult& r) {
  roster.storm.store(1, std::memory_order_release);
  futex_wake(roster.storm, INT_MAX);
  sleep_s(p.warmup_s);
  fleet.check_running();
  const uint64_t before = check.received();
  const auto start = Clock::now();
  sleep_s(p.window_s);
  const uint64_t after = check.received();
  const double window = std::chrono::duration<double>(Clock::now() - start).count();
  roster.storm.store(2, std::memory_order_release);
  fleet.wait_for(kStormDone, "stop sending");
  uint64_t sent = 0;
  for (int i = 0; i < p.guests; ++i) sent += roster.entry[i].sent;
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  while (check.received() < sent) {
    check.check();
    if (Clock::now() > give_up) {
      throw std::runtime_error("storm: " + std::to_string(sent - check.received()) + " of " +
                               std::to_string(sent) + " datagrams sent never arrived");
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  check.check();
  if (check.received() != sent) throw std::runtime_error("storm: more arrived than were sent");
  if (after == before) throw std::runtime_error("storm: nothing arrived in the window");
  r.storm_per_s = static_cast<double>(after - before) / window;
  r.storm_datagrams = sent;
}

// ---------------------------------------------------------------------------
// Ours.

// A queue pair allocated or attached through `endpoint`, detached when this ends.
struct PairGuard {
  vmci::Endpoint* endpoint = nullptr;
  std::unique_ptr<vmci::QueuePair> qp;
  ~PairGuard() {
    if (qp) endpoint->qpair_detach(&qp);
  }
};

std::set<pid_t> threads_started_since(const std::set<pid_t>& before) {
  std::set<pid_t> started;
  for (pid_t tid : thread_ids(::getpid())) {
    if (!before.count(tid)) started.insert(tid);
  }
  return started;
}

void sample_hostpeer(pid_t hostpeer, ManyGuestsResult& r) {
  const ProcMemory m = read_memory(hostpeer);
  r.hostpeer_rss = std::max(r.hostpeer_rss, m.rss);
  r.hostpeer_shmem = std::max(r.hostpeer_shmem, m.shmem);
}

vmci::Stats hostpeer_stats(vmci::guest::Driver& host) {
  vmci::Stats stats;
  if (const int status = host.hostpeer_stats(&stats); status < VMCI_SUCCESS) {
    throw std::runtime_error("hostpeer_stats: " + result_text(status));
  }
  return stats;
}

// The guest's doorbell: the host's ring, as a count its thread sleeps on.
struct RingWord {
  std::atomic<uint32_t> rings{0};
  void rung() {
    rings.fetch_add(1, std::memory_order_release);
    futex_wake(rings, INT_MAX);
  }
};

// ---------------------------------------------------------------------------
// The baseline's server: one thread, one epoll loop, a SOCK_SEQPACKET
// listener. A connection's first message is the guest's index (4 bytes),
// answered with a byte and that guest's memfd and eventfd; then 1-byte
// messages are rings, and messages of the payload's size the storm's.

class SeqpacketServer {
 public:
  SeqpacketServer(const std::string& path, const std::vector<UniqueFd>& memfds,
                  const std::vector<UniqueFd>& eventfds, StormCheck& storm)
      : memfds_(memfds), eventfds_(eventfds), storm_(storm) {
    listener_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (listener_.get() < 0) throw std::runtime_error(errno_text("socket"));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_.get(), SOMAXCONN) != 0) {
      throw std::runtime_error(errno_text("bind/listen " + path));
    }
    epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
    if (epoll_.get() < 0 || stop_.get() < 0) throw std::runtime_error(errno_text("epoll/eventfd"));
    watch(listener_.get(), kListener);
    watch(stop_.get(), kStop);
    thread_ = std::thread([this] { serve(); });
  }
  SeqpacketServer(const SeqpacketServer&) = delete;
  SeqpacketServer& operator=(const SeqpacketServer&) = delete;
  ~SeqpacketServer() {
    const uint64_t one = 1;
    if (::write(stop_.get(), &one, sizeof one) < 0) std::perror("eventfd write");
    thread_.join();
  }
  uint64_t rings() const { return rings_.load(std::memory_order_acquire); }
  // Throws the server's failure, if it had one.
  void check() const {
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) throw std::runtime_error("server: " + failure_);
  }

 private:
  static constexpr uint64_t kListener = UINT64_MAX, kStop = UINT64_MAX - 1;

  void watch(int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw std::runtime_error(errno_text("epoll_ctl"));
    }
  }

  void serve() {
    try {
      std::vector<epoll_event> events(256);
      for (;;) {
        const int n = ::epoll_wait(epoll_.get(), events.data(), 256, -1);
        if (n < 0 && errno != EINTR) throw std::runtime_error(errno_text("epoll_wait"));
        for (int e = 0; e < n; ++e) {
          const uint64_t tag = events[static_cast<size_t>(e)].data.u64;
          if (tag == kStop) return;
          if (tag == kListener) {
            accept_all();
          } else {
            read_some(tag);
          }
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      failure_ = e.what();
    }
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        throw std::runtime_error(errno_text("accept4"));
      }
      connections_.emplace_back(fd);
      watch(fd, connections_.size() - 1);
    }
  }

  // At most 64 messages from one connection per wake-up.
  void read_some(uint64_t c) {
    const int fd = connections_.at(c).get();
    uint8_t buf[4096];
    for (int i = 0; i < 64; ++i) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n < 0) throw std::runtime_error(errno_text("recv"));
      if (n == 0) {  // the guest went
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        connections_[c].reset();
        return;
      }
      if (n == 4) {
        uint32_t index = 0;
        std::memcpy(&index, buf, 4);
        hand_over(fd, index);
      } else if (n == 1) {
        rings_.fetch_add(1, std::memory_order_release);
      } else {
        storm_.take(buf, static_cast<size_t>(n));
      }
    }
  }

  // The guest's pair memory and doorbell, with one byte.
  void hand_over(int fd, uint32_t index) {
    if (index >= memfds_.size()) throw std::runtime_error("a hello from no guest");
    const int fds[2] = {memfds_[index].get(), eventfds_[index].get()};
    char byte = 'k';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)]{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(cm), fds, sizeof fds);
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != 1) throw std::runtime_error(errno_text("sendmsg"));
  }

  const std::vector<UniqueFd>& memfds_;
  const std::vector<UniqueFd>& eventfds_;
  StormCheck& storm_;
  UniqueFd listener_, epoll_, stop_;
  std::vector<UniqueFd> connections_;  // the server thread's own
  std::atomic<uint64_t> rings_{0};
  mutable std::mutex mutex_;
  std::string failure_;
  std::thread thread_;
};

size_t pair_bytes(uint64_t queue_size) {
  return static_cast<size_t>(vmci::proto::queue_pair_layout(queue_size, queue_size).total);
}

}  // namespace

int guests_that_fit(int requested, std::string* why) {
  // Per guest: its process and about 5 threads (ours: the driver's
  // reader, delivery and waiter threads); in this process 4 descriptors
  // (the baseline's control page, memfd, eventfd and connection), with 64
  // kept for the rest. The kernel's pid_max and threads-max bound the same.
  int fit = requested;
  rlimit procs{}, files{};
  if (::getrlimit(RLIMIT_NPROC, &procs) == 0 && procs.rlim_cur != RLIM_INFINITY) {
    const auto by_procs = static_cast<int>(std::min<rlim_t>(procs.rlim_cur / 6, INT_MAX));
    if (by_procs < fit) {
      fit = by_procs;
      *why = "RLIMIT_NPROC " + std::to_string(procs.rlim_cur) + " (6 tasks per guest)";
    }
  }
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    const auto by_files =
        static_cast<int>(std::min<rlim_t>(files.rlim_cur > 64 ? (files.rlim_cur - 64) / 4 : 0, INT_MAX));
    if (by_files < fit) {
      fit = by_files;
      *why = "RLIMIT_NOFILE " + std::to_string(files.rlim_cur) + " (4 descriptors per guest)";
    }
  }
  return std::max(fit, 0);
}

ManyGuestsResult run_many_guests_trial(const ManyGuestsParams& p) {
  check_params(p);
  AllCpus unpinned;
  ManyGuestsResult r;
  r.guests = p.guests;

  // The hostpeer daemon; the host connection with its doorbell and datagram handle.
  HostpeerDaemon hostpeer(-1);
  const std::set<pid_t> threads_before = thread_ids(::getpid());
  auto host = connect_driver(hostpeer.socket_path(), vmci::proto::Role::kHost);
  const std::set<pid_t> host_threads = threads_started_since(threads_before);
  std::atomic<uint64_t> host_rings{0};
  DoorbellGuard host_doorbell{host.get()};
  if (const int status = host->doorbell_create(&host_doorbell.handle, 0, 0,
                                               [&host_rings] { host_rings.fetch_add(1); });
      status < VMCI_SUCCESS) {
    host_doorbell.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("host doorbell_create: " + result_text(status));
  }
  StormCheck storm(p.guests, p.payload);
  vmci_handle datagrams = VMCI_INVALID_HANDLE;
  if (const int status = host->datagram_create_handle(
          VMCI_INVALID_ID, 0, 0,
          [&storm](vmci_datagram* dg) {
            storm.take(static_cast<const uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                       static_cast<size_t>(dg->payload_size));
            return 0;
          },
          &datagrams);
      status < VMCI_SUCCESS) {
    throw std::runtime_error("host datagram_create_handle: " + result_text(status));
  }
  std::optional<DatagramHandleGuard> datagrams_guard;
  datagrams_guard.emplace(host.get(), datagrams);

  // Every guest's pair, from the host, before the guests start.
  RosterPage roster_page("vmci-bench-roster");
  Roster& roster = roster_page.get();
  roster.host_doorbell = host_doorbell.handle;
  roster.host_datagrams = datagrams;
  roster.queue_size = p.queue_size;
  std::vector<std::unique_ptr<PairGuard>> pairs;
  const auto prepare_start = Clock::now();
  for (int i = 0; i < p.guests; ++i) {
    auto& pair = pairs.emplace_back(std::make_unique<PairGuard>());
    pair->endpoint = host.get();
    vmci_handle handle = VMCI_INVALID_HANDLE;
    if (const int status = host->qpair_alloc(&pair->qp, &handle, p.queue_size, p.queue_size,
                                             VMCI_INVALID_ID, 0, 0);
        status < VMCI_SUCCESS) {
      throw std::runtime_error("host qpair_alloc (pair " + std::to_string(i) +
                               "): " + result_text(status));
    }
    roster.entry[i].pair = handle;
  }
  r.prepare_s = std::chrono::duration<double>(Clock::now() - prepare_start).count();
  r.queue_memory = static_cast<uint64_t>(p.guests) * pair_bytes(p.queue_size);

  GuestFleet fleet(p, roster_page);
  fleet.start("many-guest", hostpeer.socket_path(), &hostpeer.child());
  r.setup_s = time_setup(fleet, roster, p.guests);
  sample_hostpeer(hostpeer.pid(), r);
  r.hostpeer_fds = open_descriptors(hostpeer.pid());
  r.hostpeer_fd_limit = descriptor_limit(hostpeer.pid());
  r.host_fds = open_descriptors(::getpid());

  // A ring each way (the guests' second rings show the channel bound).
  for (int i = 0; i < p.guests; ++i) {
    if (const int status = host->doorbell_notify(roster.entry[i].doorbell, 0);
        status < VMCI_SUCCESS) {
      throw std::runtime_error("host doorbell_notify (guest " + std::to_string(i) +
                               "): " + result_text(status));
    }
  }
  fleet.wait_for(kRang, "hear the host's ring and ring back");
  for (int i = 0; i < p.guests; ++i) {
    const RingPaths& second = roster.entry[i].second_ring;
    r.guest_second_rings += second;
    r.guests_ringing_through_hostpeer += second.through_hostpeer > 0;
  }
  if (host_rings.load() == 0) throw std::runtime_error("the host's doorbell never rang");
  r.ring_channels = hostpeer_stats(*host).ring_channels;

  const uint64_t routed_before = hostpeer_stats(*host).datagrams_routed;
  run_storm(fleet, roster, storm, p, r);
  r.storm_routed_by_hostpeer = hostpeer_stats(*host).datagrams_routed - routed_before;
  sample_hostpeer(hostpeer.pid(), r);

  // Idle: every guest connected and asleep; hostpeer and the host endpoint.
  sleep_s(0.2);
  const IdleMeter hostpeer_idle(hostpeer.pid());
  const IdleMeter host_idle(::getpid(), host_threads);
  sleep_s(p.idle_s);
  const ThreadsCost hp_cost = hostpeer_idle.cost();
  const ThreadsCost host_cost = host_idle.cost();
  r.idle_hostpeer_cpu_s = hp_cost.cpu_s;
  r.idle_hostpeer_wakeups = hp_cost.switches;
  r.idle_cpu_s = hp_cost.cpu_s + host_cost.cpu_s;
  r.idle_wakeups = hp_cost.switches + host_cost.switches;
  hostpeer.child().check_running();

  fleet.finish();
  pairs.clear();
  datagrams_guard.reset();
  host_doorbell.destroy();
  host.reset();
  hostpeer.stop(60);
  return r;
}

ManyGuestsResult run_many_sockets_trial(const ManyGuestsParams& p) {
  check_params(p);
  AllCpus unpinned;
  ManyGuestsResult r;
  r.guests = p.guests;
  TempDir dir;
  RosterPage roster_page("vmci-bench-roster");
  Roster& roster = roster_page.get();
  roster.queue_size = p.queue_size;

  // Every guest's memory and doorbell, made (and the memory mapped, as the
  // host endpoint maps its pairs) before the guests start.
  const size_t bytes = pair_bytes(p.queue_size);
  std::vector<UniqueFd> memfds, eventfds;
  std::vector<std::unique_ptr<Mapping>> mappings;
  const auto prepare_start = Clock::now();
  for (int i = 0; i < p.guests; ++i) {
    memfds.push_back(make_memfd("vmci-bench-pair", bytes));
    mappings.push_back(std::make_unique<Mapping>(memfds.back().get(), bytes));
    eventfds.emplace_back(::eventfd(0, EFD_CLOEXEC));
    if (eventfds.back().get() < 0) throw std::runtime_error(errno_text("eventfd"));
  }
  r.prepare_s = std::chrono::duration<double>(Clock::now() - prepare_start).count();
  r.queue_memory = static_cast<uint64_t>(p.guests) * bytes;

  StormCheck storm(p.guests, p.payload);
  const std::string path = dir.path() + "/server.sock";
  SeqpacketServer server(path, memfds, eventfds, storm);
  GuestFleet fleet(p, roster_page);
  fleet.start("many-socket", path, nullptr);
  r.setup_s = time_setup(fleet, roster, p.guests);
  r.host_fds = open_descriptors(::getpid());
  for (const UniqueFd& fd : eventfds) {
    const uint64_t one = 1;
    if (::write(fd.get(), &one, sizeof one) != sizeof one) {
      throw std::runtime_error(errno_text("eventfd write"));
    }
  }
  fleet.wait_for(kRang, "hear the host's ring and ring back");
  server.check();
  run_storm(fleet, roster, storm, p, r);
  server.check();
  fleet.finish();
  return r;
}

// ---------------------------------------------------------------------------
// The children.

namespace {

// A child's entry in the roster, marked started.
RosterEntry& started_entry(Roster& roster, const ChildArgs& args) {
  if (args.guest_index >= kMaxManyGuests) throw std::runtime_error("guest index out of range");
  RosterEntry& me = roster.entry[args.guest_index];
  enter_stage(me, kStarted);
  return me;
}

}  // namespace

void many_guest_child(const ChildArgs& args, Control& control) {
  const RosterPage page(args.data_fd);
  Roster& roster = page.get();
  RosterEntry& me = started_entry(roster, args);
  if (!wait_for_word(roster.go, control)) return;

  auto guest = connect_driver(args.socket_path, vmci::proto::Role::kGuest);
  RingWord heard;
  DoorbellGuard doorbell{guest.get()};
  if (const int status = guest->doorbell_create(&doorbell.handle, 0, 0, [&heard] { heard.rung(); });
      status < VMCI_SUCCESS) {
    doorbell.handle = VMCI_INVALID_HANDLE;
    throw std::runtime_error("guest doorbell_create: " + result_text(status));
  }
  PairGuard pair{guest.get(), nullptr};
  vmci_handle handle = me.pair;
  if (const int status = guest->qpair_alloc(&pair.qp, &handle, roster.queue_size,
                                            roster.queue_size, VMCI_INVALID_ID, 0, 0);
      status < VMCI_SUCCESS) {
    throw std::runtime_error("guest qpair_alloc: " + result_text(status));
  }
  me.doorbell = doorbell.handle;
  me.set_up_ns = now_ns();
  enter_stage(me, kSetUp);

  if (!wait_for_word(heard.rings, control)) return;
  for (int ring = 0; ring < 2; ++ring) {
    const RingPaths before = ring_paths(*guest);
    if (const int status = guest->doorbell_notify(roster.host_doorbell, 0); status < VMCI_SUCCESS) {
      throw std::runtime_error("guest doorbell_notify: " + result_text(status));
    }
    if (ring == 1) me.second_ring = ring_paths(*guest).since(before);
  }
  enter_stage(me, kRang);

  if (!wait_for_word(roster.storm, control)) return;
  vmci_handle own = VMCI_INVALID_HANDLE;
  if (const int status = guest->datagram_create_handle(
          VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &own);
      status < VMCI_SUCCESS) {
    throw std::runtime_error("guest datagram_create_handle: " + result_text(status));
  }
  std::vector<uint8_t> dg(sizeof(vmci_datagram) + args.chunk, 0x5a);
  auto* header = reinterpret_cast<vmci_datagram*>(dg.data());
  header->dst = roster.host_datagrams;
  header->src = own;
  header->payload_size = args.chunk;
  const int expected = static_cast<int>(dg.size());
  uint64_t seq = 0;
  // Refused for room (the host is behind): the guest sleeps, 50 us at
  // first, doubling up to 1 ms, as a guest whose vCPU halts would; with a
  // thousand senders on a few CPUs, yielding instead starves the host.
  auto backoff = std::chrono::microseconds(50);
  while (roster.storm.load(std::memory_order_acquire) == 1) {
    stamp_payload(dg.data() + sizeof(vmci_datagram), static_cast<uint32_t>(args.guest_index), seq);
    const int result = guest->datagram_send(header);
    if (result == expected) {
      ++seq;
      backoff = std::chrono::microseconds(50);
    } else if (result == VMCI_ERROR_NO_RESOURCES) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::microseconds(1000));
    } else {
      throw std::runtime_error("guest datagram_send: " + result_text(result));
    }
  }
  me.sent = seq;
  enter_stage(me, kStormDone);
  wait_for_stop(control, [] {}, std::chrono::hours(24));
  guest->datagram_destroy_handle(own);
}

void many_socket_child(const ChildArgs& args, Control& control) {
  const RosterPage page(args.data_fd);
  Roster& roster = page.get();
  RosterEntry& me = started_entry(roster, args);
  if (!wait_for_word(roster.go, control)) return;

  const UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", args.socket_path.c_str());
  if (sock.get() < 0 || ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(errno_text("connect " + args.socket_path));
  }
  const auto index = static_cast<uint32_t>(args.guest_index);
  if (::send(sock.get(), &index, sizeof index, MSG_NOSIGNAL) != sizeof index) {
    throw std::runtime_error(errno_text("send"));
  }
  char byte = 0;
  iovec iov{&byte, 1};
  int fds[2] = {-1, -1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof fds)]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  if (::recvmsg(sock.get(), &msg, MSG_CMSG_CLOEXEC) != 1) throw std::runtime_error(errno_text("recvmsg"));
  const cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (cm == nullptr || cm->cmsg_len != CMSG_LEN(sizeof fds)) {
    throw std::runtime_error("no descriptors from the server");
  }
  std::memcpy(fds, CMSG_DATA(cm), sizeof fds);
  const UniqueFd memory(fds[0]), doorbell(fds[1]);
  const Mapping pair(memory.get(), fd_size(memory.get()));
  me.set_up_ns = now_ns();
  enter_stage(me, kSetUp);

  uint64_t rung = 0;
  if (::read(doorbell.get(), &rung, sizeof rung) != sizeof rung) {
    throw std::runtime_error(errno_text("eventfd read"));
  }
  for (int ring = 0; ring < 2; ++ring) {
    if (::send(sock.get(), &byte, 1, MSG_NOSIGNAL) != 1) throw std::runtime_error(errno_text("send"));
  }
  enter_stage(me, kRang);

  if (!wait_for_word(roster.storm, control)) return;
  std::vector<uint8_t> payload(args.chunk, 0x5a);
  uint64_t seq = 0;
  while (roster.storm.load(std::memory_order_acquire) == 1) {
    stamp_payload(payload.data(), index, seq);
    if (::send(sock.get(), payload.data(), payload.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(payload.size())) {
      if (errno == EINTR) continue;
      throw std::runtime_error(errno_text("send"));
    }
    ++seq;
  }
  me.sent = seq;
  enter_stage(me, kStormDone);
  wait_for_stop(control, [] {}, std::chrono::hours(24));
}

}  // namespace bench
