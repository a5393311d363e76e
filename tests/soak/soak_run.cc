#include "soak_run.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <sstream>

#include "child_process.h"
#include "host_side.h"
#include "resource_check.h"
#include "vmci/proto/names.h"

namespace vmci::soak {

using testing::ChildOptions;
using testing::ChildProcess;
using testing::describe_wait_status;
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

// How long any answer of a guest, or a hostpeer event, may take on a
// loaded 2-core machine before it counts as a hang.
constexpr int kAnswerMs = 30000;
constexpr seconds kEventWait{15};
// RSS: samples of the first quarter (at least this many) are warm-up; the
// last kRssTail may be at most kRssSlackKiB above the median of the rest.
constexpr size_t kRssMinWarmup = 5;
constexpr size_t kRssTail = 3;
constexpr uint64_t kRssSlackKiB = 2048;

// What the soak did, for the summary.
struct Totals {
  uint64_t host_bytes_checked = 0;   // guest -> host stream bytes, checked by the host
  uint64_t guest_bytes_checked = 0;  // host -> guest, checked by guests that stopped cleanly
  uint64_t datagrams_sent = 0;       // by guests that stopped cleanly (all checked)
  uint64_t no_resources = 0;         // their sends refused (pending cap) and retried
  uint64_t guest_rings = 0;          // guests -> host doorbell (guests that stopped cleanly)
  uint64_t guest_bell_callbacks = 0;
  uint64_t sessions = 0;
  uint64_t kills = 0;
  uint64_t clean_reconnects = 0;     // disconnect and connect again in the same process
  uint64_t restarts = 0;             // a new process after a clean exit
  uint64_t same_cid = 0;             // new sessions that asked for their predecessor's id
};

// Says what the soak is doing; if the soak runs far past its time, it
// reports the phase it is stuck in (a hang in hostpeer or the library)
// with hostpeer's log, and exits 1.
class Watchdog {
 public:
  Watchdog(seconds limit, const HostpeerDaemon& daemon)
      : deadline_(Clock::now() + limit), daemon_(daemon), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void phase(const std::string& what) {
    std::lock_guard lock(mutex_);
    phase_ = what;
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    if (wake_.wait_until(lock, deadline_, [&] { return done_; })) return;
    std::fprintf(stderr,
                 "vmci-soak: FAILURE: watchdog: stuck in \"%s\" (a hang); hostpeer's log ends:\n%s",
                 phase_.c_str(), daemon_.log_tail(30).c_str());
    std::printf("soak: FAILED (hang in \"%s\")\n", phase_.c_str());
    std::fflush(stdout);
    _exit(1);
  }
  const Clock::time_point deadline_;
  const HostpeerDaemon& daemon_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string phase_ = "starting";
  bool done_ = false;
  std::thread thread_;
};

// A guest process (vmci-soak --guest), driven by the protocol of
// guest_mode.h. Every method returns nullopt/false after recording in the
// FailureLog what the guest answered instead.
class GuestProcess {
 public:
  struct Hello {
    vmci_id cid;
    vmci_id bell;
    vmci_id datagram_handle;
  };
  struct Stopped {
    uint64_t wrote, datagrams, no_resources, rings;
  };
  struct Done {
    uint64_t read, callbacks;
  };

  GuestProcess(const SoakOptions& options, const std::string& socket, const HostSide& host,
               uint64_t seed, FailureLog& failures, std::string label)
      : failures_(failures),
        label_(std::move(label)),
        process_({options.self, "--guest", "--socket", socket, "--host-datagram",
                  handle_text(host.datagram_handle()), "--host-doorbell",
                  handle_text(host.doorbell()), "--seed", std::to_string(seed)},
                 {.piped = true, .stderr_path = ""}) {}

  const std::string& label() const { return label_; }
  pid_t pid() const { return process_.pid(); }

  std::optional<Hello> connect(vmci_id cid) {
    std::istringstream in;
    if (!call("connect " + (cid == VMCI_INVALID_ID ? std::string("-") : std::to_string(cid)),
              "hello", &in)) {
      return std::nullopt;
    }
    Hello h{};
    in >> h.cid >> h.bell >> h.datagram_handle;
    return h;
  }
  bool attach(const std::string& args) { return call("qp " + args, "attached", nullptr); }
  std::optional<Stopped> stop() {
    std::istringstream in;
    if (!call("stop", "stopped", &in)) return std::nullopt;
    Stopped s{};
    in >> s.wrote >> s.datagrams >> s.no_resources >> s.rings;
    return s;
  }
  std::optional<Done> drain(uint64_t bytes) {
    std::istringstream in;
    if (!call("drain " + std::to_string(bytes), "done", &in)) return std::nullopt;
    Done d{};
    in >> d.read >> d.callbacks;
    return d;
  }
  // Asks it to exit; it must, with status 0.
  bool exit() {
    process_.write_line("exit");
    const int status = process_.wait(10000);
    if (status != 0) {
      failures_.add(label_ + ": guest did not exit 0 when told to: " +
                    describe_wait_status(status));
      return false;
    }
    return true;
  }
  void kill() {
    process_.signal(SIGKILL);
    process_.wait(10000);
  }
  // An unexpected line or exit of a guest that should be busy streaming:
  // a description, or "".
  std::string trouble() {
    const std::string line = process_.read_line(0);
    if (line != "<timeout>") return "said \"" + line + "\" unasked";
    if (!process_.running()) {
      return "exited unexpectedly: " + describe_wait_status(process_.exit_status());
    }
    return "";
  }

 private:
  // Sends `command`; the answer must start with `expected` (the rest goes to *rest).
  bool call(const std::string& command, const std::string& expected, std::istringstream* rest) {
    if (!process_.write_line(command)) {
      failures_.add(label_ + ": guest gone before \"" + command + "\" (" +
                    describe_wait_status(process_.wait(1000)) + ")");
      return false;
    }
    const std::string line = process_.read_line(kAnswerMs);
    if (line.rfind(expected, 0) != 0) {
      std::string why = line;
      if (line == "<eof>") why += " (" + describe_wait_status(process_.wait(1000)) + ")";
      failures_.add(label_ + ": \"" + command + "\" answered \"" + why + "\", expected \"" +
                    expected + " ...\"");
      return false;
    }
    if (rest) rest->str(line.substr(expected.size()));
    return true;
  }

  FailureLog& failures_;
  const std::string label_;
  ChildProcess process_;
};

// One guest connection as the host sees it.
struct Session {
  uint32_t id = 0;
  vmci_id cid = VMCI_INVALID_ID;
  vmci_handle bell = VMCI_INVALID_HANDLE;
  std::unique_ptr<HostLink> link;
};

// A place for one guest: its process, and its current session if any.
struct Slot {
  int index = 0;
  int generation = 0;  // processes started in this slot
  std::unique_ptr<GuestProcess> process;
  std::optional<Session> session;
};

// The guests and the random events among them. Owns no hostpeer state:
// the host side and the daemon are passed in.
class GuestFleet {
 public:
  GuestFleet(const SoakOptions& options, const std::string& socket, HostSide& host,
             FailureLog& failures, Totals& totals, Watchdog& watchdog)
      : options_(options),
        socket_(socket),
        host_(host),
        failures_(failures),
        totals_(totals),
        watchdog_(watchdog),
        rng_(options.seed) {
    slots_.resize(static_cast<size_t>(options.guests));
    for (size_t i = 0; i < slots_.size(); ++i) slots_[i].index = static_cast<int>(i);
  }

  // Starts every guest. False once something failed.
  bool start_all() {
    for (Slot& slot : slots_) {
      if (!start_process(slot) || !begin_session(slot, VMCI_INVALID_ID)) return false;
    }
    return true;
  }

  // Until `end` or a failure: one random event on a random guest every so
  // often, and a look at every guest and the daemon in between.
  void run_until(Clock::time_point end, HostpeerDaemon& daemon) {
    auto next_event = Clock::now() + event_gap();
    auto next_report = Clock::now() + seconds(10);
    const auto start = Clock::now();
    while (Clock::now() < end && !failures_.any()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!daemon.running()) {
        failures_.add("vmci-hostpeer died during the soak: " + daemon.exit_description() +
                      "; its log ends:\n" + daemon.log_tail(30));
        return;
      }
      for (Slot& slot : slots_) {
        if (const std::string t = slot.process->trouble(); !t.empty()) {
          failures_.add(slot.process->label() + ": " + t);
        }
      }
      if (Clock::now() >= next_event) {
        random_event(slots_[rng_() % slots_.size()]);
        next_event = Clock::now() + event_gap();
      }
      if (Clock::now() >= next_report) {
        next_report = Clock::now() + seconds(10);
        progress(start, daemon);
      }
    }
  }

  // Every guest ends its session cleanly and exits (or, after a failure,
  // is killed).
  void stop_all() {
    for (Slot& slot : slots_) {
      if (!slot.process) continue;
      if (!failures_.any() && slot.session) end_session(slot);
      if (!failures_.any()) {
        watchdog_.phase(slot.process->label() + ": exit");
        slot.process->exit();
      } else {
        if (slot.session) host_.ringer().remove(slot.session->bell);
        slot.process->kill();
      }
      if (slot.session) {
        slot.session->link->abandon();
        slot.session->link->detach();
        slot.session.reset();
      }
      slot.process.reset();
    }
  }

  uint64_t host_bytes_in_flight() const {
    uint64_t n = 0;
    for (const Slot& slot : slots_) {
      if (slot.session) n += slot.session->link->bytes_read();
    }
    return n;
  }

 private:
  Clock::duration event_gap() {
    // About one event per second with 16 guests; as many per guest with fewer.
    const double mean = 16.0 / options_.guests;
    return std::chrono::milliseconds(
        static_cast<int64_t>(1000 * mean * (0.4 + 1.2 * static_cast<double>(rng_() % 1000) / 1000)));
  }

  std::string label(const Slot& slot) const {
    return "guest " + std::to_string(slot.index) + "." + std::to_string(slot.generation);
  }

  bool start_process(Slot& slot) {
    ++slot.generation;
    watchdog_.phase(label(slot) + ": starting");
    slot.process = std::make_unique<GuestProcess>(options_, socket_, host_, rng_(), failures_,
                                                  label(slot));
    return true;
  }

  // Connects the slot's process (asking for `cid` unless invalid), gives it
  // a new pair, and starts the host's end. False (with a failure) if any
  // step does not go as it should.
  bool begin_session(Slot& slot, vmci_id cid) {
    GuestProcess& guest = *slot.process;
    watchdog_.phase(guest.label() + ": connect");
    const auto hello = guest.connect(cid);
    if (!hello) return false;
    if (cid != VMCI_INVALID_ID && hello->cid != cid) {
      failures_.add(guest.label() + ": asked for context " + std::to_string(cid) + ", got " +
                    std::to_string(hello->cid));
      return false;
    }
    Session session;
    session.id = static_cast<uint32_t>(++totals_.sessions);
    session.cid = hello->cid;
    session.bell = VMCI_MAKE_HANDLE(hello->cid, hello->bell);
    host_.ledger().open(session.id, VMCI_MAKE_HANDLE(hello->cid, hello->datagram_handle));
    session.link = std::make_unique<HostLink>(
        host_.endpoint(), failures_,
        guest.label() + " (context " + std::to_string(hello->cid) + ", session " +
            std::to_string(session.id) + ")");
    // Sizes that are rarely page multiples, so the rings wrap at odd places.
    const uint64_t host_produce = 4096 + rng_() % (256 * 1024);
    const uint64_t host_consume = 4096 + rng_() % (256 * 1024);
    watchdog_.phase(guest.label() + ": host qpair_alloc");
    const int rc = session.link->allocate(hello->cid, host_produce, host_consume);
    if (rc != VMCI_SUCCESS) {
      failures_.add(guest.label() + ": host qpair_alloc for context " +
                    std::to_string(hello->cid) + ": " + proto::describe_result(rc));
      return false;
    }
    const uint64_t guest_to_host = rng_(), host_to_guest = rng_(), chunks = rng_();
    watchdog_.phase(guest.label() + ": guest attach");
    std::ostringstream args;
    args << handle_text(session.link->handle()) << " " << host_consume << " " << host_produce
         << " " << guest_to_host << " " << host_to_guest << " " << chunks << " " << session.id;
    if (!guest.attach(args.str())) return false;
    watchdog_.phase(guest.label() + ": waiting for QP_PEER_ATTACH");
    if (!host_.events().take_pair_event(VMCI_EVENT_QP_PEER_ATTACH, session.link->handle(),
                                        kEventWait)) {
      failures_.add(guest.label() + ": no VMCI_EVENT_QP_PEER_ATTACH for " +
                    handle_text(session.link->handle()) + " after the guest attached");
      return false;
    }
    session.link->start(host_to_guest, guest_to_host, chunks);
    host_.ringer().add(session.bell);
    slot.session = std::move(session);
    return true;
  }

  // The clean end of the slot's session: the guest stops producing, both
  // streams are read to their last byte, every datagram the guest sent has
  // arrived, the guest detaches and disconnects, and the host gets
  // QP_PEER_DETACH and CTX_REMOVED. Returns the context id it had.
  vmci_id end_session(Slot& slot) {
    GuestProcess& guest = *slot.process;
    Session& session = *slot.session;
    const vmci_id cid = session.cid;
    watchdog_.phase(guest.label() + ": stop");
    const auto stopped = guest.stop();
    host_.ringer().remove(session.bell);
    if (!stopped) return cid;
    watchdog_.phase(guest.label() + ": host stops writing");
    const uint64_t written = session.link->stop_writing();
    watchdog_.phase(guest.label() + ": host reads the guest's last bytes");
    session.link->finish_reading(stopped->wrote);
    // Every datagram the guest sent (its send returned the size) must
    // arrive: half the time checked while the guest is still connected,
    // half the time after it disconnected (accepted datagrams are not
    // retracted by their sender's going).
    const bool datagrams_before_disconnect = rng_() % 2 == 0;
    if (datagrams_before_disconnect) {
      check_datagrams(guest, session, stopped->datagrams, "before it disconnected");
    }
    watchdog_.phase(guest.label() + ": guest reads the host's last bytes");
    const auto done = guest.drain(written);
    if (!done) return cid;
    if (!datagrams_before_disconnect) {
      check_datagrams(guest, session, stopped->datagrams, "after it disconnected cleanly");
    }
    watchdog_.phase(guest.label() + ": waiting for QP_PEER_DETACH and CTX_REMOVED");
    if (!host_.events().take_pair_event(VMCI_EVENT_QP_PEER_DETACH, session.link->handle(),
                                        kEventWait)) {
      failures_.add(guest.label() + ": no VMCI_EVENT_QP_PEER_DETACH for " +
                    handle_text(session.link->handle()) + " after the guest detached");
    }
    if (const int rc = session.link->detach(); rc != VMCI_SUCCESS) {
      failures_.add(guest.label() + ": host qpair_detach: " + proto::describe_result(rc));
    }
    if (!host_.events().take_context_removed(cid, kEventWait)) {
      failures_.add(guest.label() + ": no VMCI_EVENT_CTX_REMOVED for context " +
                    std::to_string(cid) + " after it disconnected");
    }
    if (done->callbacks == 0) {
      failures_.add(guest.label() + ": no doorbell callback although the host rang it");
    }
    totals_.host_bytes_checked += session.link->bytes_read();
    totals_.guest_bytes_checked += done->read;
    totals_.datagrams_sent += stopped->datagrams;
    totals_.no_resources += stopped->no_resources;
    totals_.guest_rings += stopped->rings;
    totals_.guest_bell_callbacks += done->callbacks;
    slot.session.reset();
    return cid;
  }

  // Waits until the host got all `sent` datagrams of the session.
  void check_datagrams(const GuestProcess& guest, const Session& session, uint64_t sent,
                       const char* when) {
    watchdog_.phase(guest.label() + ": waiting for the guest's datagrams");
    if (host_.ledger().wait_for(session.id, sent, kEventWait) &&
        host_.ledger().received(session.id) == sent) {
      return;
    }
    const uint64_t got = host_.ledger().received(session.id);
    failures_.add(guest.label() + " (context " + std::to_string(session.cid) + "): the guest sent " +
                  std::to_string(sent) + " datagrams (each send returned its size), the host got " +
                  std::to_string(got) + ", in order, within " + std::to_string(kEventWait.count()) +
                  " s " + when + (got < sent ? ": the last " + std::to_string(sent - got) +
                                                   " never arrived"
                                             : ": more than were sent"));
  }

  // SIGKILL at whatever the guest is doing: the host's streams end at
  // NOTATTACHED without error, and CTX_REMOVED and QP_PEER_DETACH come.
  vmci_id kill_guest(Slot& slot) {
    Session& session = *slot.session;
    const vmci_id cid = session.cid;
    host_.ringer().remove(session.bell);
    watchdog_.phase(slot.process->label() + ": SIGKILL");
    slot.process->kill();
    ++totals_.kills;
    const auto killed = Clock::now();
    auto since_kill = [&] {
      return std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed)
                     .count()) +
             " ms";
    };
    watchdog_.phase(slot.process->label() + ": host streams end after the kill");
    const bool ended = session.link->wait_peer_gone(kEventWait);
    const std::string pumps_ended = ended ? since_kill() : "never";
    if (!host_.events().take_context_removed(cid, kEventWait)) {
      failures_.add(slot.process->label() + ": no VMCI_EVENT_CTX_REMOVED for context " +
                    std::to_string(cid) + " after SIGKILL");
    }
    const std::string removed = since_kill();
    if (!host_.events().take_pair_event(VMCI_EVENT_QP_PEER_DETACH, session.link->handle(),
                                        kEventWait)) {
      failures_.add(slot.process->label() + ": no VMCI_EVENT_QP_PEER_DETACH for " +
                    handle_text(session.link->handle()) + " after SIGKILL");
    }
    if (!ended) {
      proto::StatsBody stats{};
      host_.endpoint().hostpeer_stats(&stats);
      failures_.add(slot.process->label() + ": after SIGKILL of context " + std::to_string(cid) +
                    ": host pumps ended " + pumps_ended + ", CTX_REMOVED came within " + removed +
                    ", QP_PEER_DETACH within " + since_kill() + "; hostpeer now: " +
                    describe_stats(stats));
    }
    if (const int rc = session.link->detach(); rc != VMCI_SUCCESS) {
      failures_.add(slot.process->label() + ": host qpair_detach after the kill: " +
                    proto::describe_result(rc));
    }
    totals_.host_bytes_checked += session.link->bytes_read();
    slot.session.reset();
    return cid;
  }

  // A kill and a new process (40%), a clean disconnect and reconnect in the
  // same process (30%), or a clean exit and a new process (30%); the new
  // connection asks for the old context id half the time.
  void random_event(Slot& slot) {
    if (!slot.session) return;
    const auto kind = rng_() % 10;
    const bool same_cid = rng_() % 2 == 0;
    vmci_id old_cid = VMCI_INVALID_ID;
    if (kind < 4) {
      old_cid = kill_guest(slot);
      start_process(slot);
    } else {
      old_cid = end_session(slot);
      if (failures_.any()) return;
      if (kind < 7) {
        ++totals_.clean_reconnects;
      } else {
        slot.process->exit();
        start_process(slot);
        ++totals_.restarts;
      }
    }
    if (failures_.any()) return;
    if (same_cid) ++totals_.same_cid;
    begin_session(slot, same_cid ? old_cid : VMCI_INVALID_ID);
  }

  void progress(Clock::time_point start, HostpeerDaemon& daemon) {
    const auto t = std::chrono::duration_cast<seconds>(Clock::now() - start).count();
    std::printf(
        "  t=%llds: stream bytes checked by host %llu MiB, datagrams %llu, host rings %llu, "
        "host bell callbacks %llu, sessions %llu, kills %llu, hostpeer RSS %lld KiB\n",
        static_cast<long long>(t),
        static_cast<unsigned long long>((totals_.host_bytes_checked + host_bytes_in_flight()) >> 20),
        static_cast<unsigned long long>(host_.ledger().total()),
        static_cast<unsigned long long>(host_.ringer().rings()),
        static_cast<unsigned long long>(host_.doorbell_callbacks()),
        static_cast<unsigned long long>(totals_.sessions),
        static_cast<unsigned long long>(totals_.kills),
        static_cast<long long>(proc_status_field(daemon.pid(), "VmRSS")));
    std::fflush(stdout);
  }

  const SoakOptions& options_;
  const std::string socket_;
  HostSide& host_;
  FailureLog& failures_;
  Totals& totals_;
  Watchdog& watchdog_;
  std::mt19937_64 rng_;
  std::vector<Slot> slots_;
};

// One line per check: "check NAME: ok|FAILED (detail)".
class CheckReport {
 public:
  explicit CheckReport(FailureLog& failures) : failures_(failures) {}
  void line(const std::string& name, bool ok, const std::string& detail) {
    std::printf("check %-28s %s%s\n", (name + ":").c_str(), ok ? "ok" : "FAILED",
                detail.empty() ? "" : ("  (" + detail + ")").c_str());
    std::fflush(stdout);
    if (!ok) failures_.add(name + ": " + detail);
  }

 private:
  FailureLog& failures_;
};

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// Polls hostpeer's stats (through `endpoint`) for up to 15 s until it holds
// only what is expected; the last problems found (empty: all back).
std::vector<std::string> wait_for_clean_stats(guest::Driver& endpoint,
                                              const ExpectedHoldings& expected,
                                              proto::StatsBody* stats) {
  std::vector<std::string> problems;
  const auto deadline = Clock::now() + seconds(15);
  do {
    const int rc = endpoint.hostpeer_stats(stats);
    if (rc != VMCI_SUCCESS) return {"hostpeer_stats: " + proto::describe_result(rc)};
    problems = stats_left_over(*stats, expected);
    if (problems.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (Clock::now() < deadline);
  return problems;
}

std::string rss_series(const std::vector<uint64_t>& samples) {
  std::string out;
  for (size_t i = 0; i < samples.size(); ++i) {
    out += (i % 20 == 0 ? "\n    " : " ") + std::to_string(samples[i]);
  }
  return out;
}

}  // namespace

int run_soak(const SoakOptions& options) {
  std::printf("vmci-soak: %d s, %d guests, seed %llu (reproduce: vmci-soak --seconds %d "
              "--guests %d --seed %llu)\n",
              options.seconds, options.guests, static_cast<unsigned long long>(options.seed),
              options.seconds, options.guests, static_cast<unsigned long long>(options.seed));
  std::fflush(stdout);
  FailureLog failures;
  CheckReport check(failures);
  Totals totals;
  const auto shm_before = shm_listing();
  const auto began = Clock::now();

  std::string error;
  auto daemon = HostpeerDaemon::start(options.hostpeer, &error);
  if (!daemon) {
    std::printf("soak: FAILED: %s\n", error.c_str());
    return 1;
  }
  Watchdog watchdog(seconds(options.seconds + 240), *daemon);
  const auto fds_at_start = open_fds(daemon->pid());
  const int64_t threads_at_start = proc_status_field(daemon->pid(), "Threads");
  RssSampler rss(daemon->pid());

  watchdog.phase("host connect");
  auto host = HostSide::connect(daemon->socket_path(), failures, &error);
  if (!host) {
    std::printf("soak: FAILED: host connection: %s\n", error.c_str());
    return 1;
  }
  std::vector<uint64_t> rss_under_load;
  {
    GuestFleet fleet(options, daemon->socket_path(), *host, failures, totals, watchdog);
    if (fleet.start_all()) {
      watchdog.phase("soaking");
      fleet.run_until(began + seconds(options.seconds), *daemon);
    }
    rss_under_load = rss.samples();
    watchdog.phase("stopping the guests");
    fleet.stop_all();
  }
  const auto soaked = Clock::now();
  const uint64_t host_rings = host->ringer().rings();
  const uint64_t host_bell_callbacks = host->doorbell_callbacks();
  const uint64_t datagrams_checked = host->ledger().total();
  const uint64_t peer_detaches = host->events().count(VMCI_EVENT_QP_PEER_DETACH);
  const uint64_t contexts_removed = host->events().count(VMCI_EVENT_CTX_REMOVED);
  const bool soak_ok = !failures.any();
  check.line("soak", soak_ok,
             soak_ok ? "" : std::to_string(failures.all().size()) + " failure(s), above");

  // Everything but the host's own doorbell gone, seen by the host itself.
  watchdog.phase("host closes its handles; stats");
  host->close_handles();
  proto::StatsBody stats{};
  auto left = wait_for_clean_stats(host->endpoint(), {.host_doorbells = 1}, &stats);
  check.line("hostpeer holds nothing", left.empty(),
             left.empty() ? "only the host's doorbell" : join(left, ", "));
  std::printf("  stats: %s\n", describe_stats(stats).c_str());
  host->close_doorbell();
  host.reset();

  // And from a second, short-lived host connection: nothing at all.
  watchdog.phase("second host connection; stats");
  {
    int status = 0;
    auto second = guest::Driver::connect(
        {.socket_path = daemon->socket_path(), .role = proto::Role::kHost}, &status, &error);
    if (!second) {
      check.line("hostpeer holds nothing (2nd)", false, "connect: " + error);
    } else {
      left = wait_for_clean_stats(*second, {}, &stats);
      check.line("hostpeer holds nothing (2nd)", left.empty(),
                 left.empty() ? "after the host left" : join(left, ", "));
    }
  }

  watchdog.phase("descriptors");
  // None left open that it did not have at start (it may have closed one
  // it had while starting up).
  const auto opened_since_start = [&] {
    std::vector<std::string> out;
    for (const auto& [fd, target] : open_fds(daemon->pid())) {
      auto it = fds_at_start.find(fd);
      if (it == fds_at_start.end() || it->second != target) out.push_back(fd + " -> " + target);
    }
    return out;
  };
  std::vector<std::string> left_open = opened_since_start();
  for (int i = 0; i < 200 && !left_open.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    left_open = opened_since_start();
  }
  check.line("hostpeer descriptors", left_open.empty(),
             std::to_string(fds_at_start.size()) + " at start, " +
                 (left_open.empty() ? std::string("none added") : "added: " + join(left_open, ", ")));
  const int64_t threads_at_end = proc_status_field(daemon->pid(), "Threads");

  rss.stop();
  const auto all_rss = rss.samples();
  const size_t warmup = std::max(kRssMinWarmup, rss_under_load.size() / 4);
  const RssVerdict verdict = judge_rss(rss_under_load, warmup, kRssTail, kRssSlackKiB);
  check.line("hostpeer RSS flat", verdict.flat,
             verdict.detail.empty()
                 ? "last " + std::to_string(verdict.last_kib) + " KiB, median after warm-up " +
                       std::to_string(verdict.median_kib) + " KiB, slack " +
                       std::to_string(kRssSlackKiB) + " KiB"
                 : verdict.detail);
  std::printf("  RSS series (KiB, 1/s; %zu under load, warm-up %zu, then %zu after):%s\n",
              rss_under_load.size(), warmup, all_rss.size() - rss_under_load.size(),
              rss_series(all_rss).c_str());

  watchdog.phase("SIGTERM to hostpeer");
  const int status = daemon->stop();
  check.line("hostpeer exits 0 on SIGTERM", status == 0, describe_wait_status(status));

  const auto shm_after = shm_listing();
  std::vector<std::string> added;
  std::set_difference(shm_after.begin(), shm_after.end(), shm_before.begin(), shm_before.end(),
                      std::back_inserter(added));
  check.line("/dev/shm unchanged", added.empty(),
             added.empty() ? std::to_string(shm_after.size()) + " entries, as before"
                           : "new: " + join(added, " "));

  const double duration = std::chrono::duration<double>(soaked - began).count();
  std::printf(
      "totals: duration %.1f s; stream bytes checked %llu (host %llu, guests %llu); datagrams "
      "checked %llu (retried after NO_RESOURCES %llu); rings: guests->host %llu (host callbacks "
      "%llu), host->guests %llu (guest callbacks %llu); sessions %llu, kills %llu, reconnects "
      "%llu (in-process %llu, new process %llu, asking for the old id %llu); events: "
      "QP_PEER_DETACH %llu, CTX_REMOVED %llu; hostpeer threads %lld -> %lld; RSS start %llu "
      "KiB, end of load %llu KiB, after %llu KiB\n",
      duration,
      static_cast<unsigned long long>(totals.host_bytes_checked + totals.guest_bytes_checked),
      static_cast<unsigned long long>(totals.host_bytes_checked),
      static_cast<unsigned long long>(totals.guest_bytes_checked),
      static_cast<unsigned long long>(datagrams_checked),
      static_cast<unsigned long long>(totals.no_resources),
      static_cast<unsigned long long>(totals.guest_rings),
      static_cast<unsigned long long>(host_bell_callbacks),
      static_cast<unsigned long long>(host_rings),
      static_cast<unsigned long long>(totals.guest_bell_callbacks),
      static_cast<unsigned long long>(totals.sessions),
      static_cast<unsigned long long>(totals.kills),
      static_cast<unsigned long long>(
          totals.sessions - std::min(totals.sessions, static_cast<uint64_t>(options.guests))),
      static_cast<unsigned long long>(totals.clean_reconnects),
      static_cast<unsigned long long>(totals.restarts),
      static_cast<unsigned long long>(totals.same_cid),
      static_cast<unsigned long long>(peer_detaches),
      static_cast<unsigned long long>(contexts_removed), static_cast<long long>(threads_at_start),
      static_cast<long long>(threads_at_end),
      static_cast<unsigned long long>(all_rss.empty() ? 0 : all_rss.front()),
      static_cast<unsigned long long>(rss_under_load.empty() ? 0 : rss_under_load.back()),
      static_cast<unsigned long long>(all_rss.empty() ? 0 : all_rss.back()));

  const auto all = failures.all();
  if (all.empty()) {
    std::printf("soak: PASSED\n");
    return 0;
  }
  std::printf("soak: FAILED (%zu):\n", all.size());
  for (const auto& f : all) std::printf("  - %s\n", f.c_str());
  std::printf("hostpeer's log ends:\n%s", daemon->log_tail(20).c_str());
  const std::string kept = "/tmp/vmci-soak-hostpeer-" + std::to_string(::getpid()) + ".log";
  std::error_code ec;
  std::filesystem::copy_file(daemon->log_path(), kept,
                             std::filesystem::copy_options::overwrite_existing, ec);
  if (!ec) std::printf("hostpeer's whole log: %s\n", kept.c_str());
  return 1;
}

}  // namespace vmci::soak
