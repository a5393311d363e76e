#include "resource_check.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vmci::soak {
namespace {

bool socket_answers(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

// --- HostpeerDaemon ---

std::unique_ptr<HostpeerDaemon> HostpeerDaemon::start(const std::string& binary,
                                                      std::string* error) {
  std::unique_ptr<HostpeerDaemon> daemon(new HostpeerDaemon);
  char tmpl[] = "/tmp/vmci-soak-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    *error = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  daemon->dir_ = tmpl;
  daemon->socket_ = daemon->dir_ + "/hostpeer.sock";
  daemon->log_ = daemon->dir_ + "/hostpeer.log";
  ChildOptions options;
  options.stderr_path = daemon->log_;
  daemon->process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary, "--socket", daemon->socket_, "--log-level", "info"},
      options);
  for (int i = 0; i < 2000 && !socket_answers(daemon->socket_); ++i) {
    if (!daemon->process_->running()) {
      *error = binary + " exited at start (" + daemon->exit_description() + "): " +
               daemon->log_tail(10);
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (!socket_answers(daemon->socket_)) {
    *error = binary + " did not answer on " + daemon->socket_ + " within 10 s";
    return nullptr;
  }
  return daemon;
}

HostpeerDaemon::~HostpeerDaemon() {
  process_.reset();  // kills it if still running
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

int HostpeerDaemon::stop() {
  process_->signal(SIGTERM);
  return process_->wait(15000);
}

std::string HostpeerDaemon::log_tail(size_t lines) const {
  std::ifstream in(log_);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += "  | " + l + "\n";
  return out;
}

// --- RssSampler ---

RssSampler::RssSampler(pid_t pid) : pid_(pid), thread_([this] { run(); }) {}

RssSampler::~RssSampler() { stop(); }

void RssSampler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<uint64_t> RssSampler::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

void RssSampler::run() {
  auto next = std::chrono::steady_clock::now();
  while (!stop_) {
    const int64_t rss = proc_status_field(pid_, "VmRSS");
    if (rss >= 0) {
      std::lock_guard lock(mutex_);
      samples_.push_back(static_cast<uint64_t>(rss));
    }
    next += std::chrono::seconds(1);
    while (!stop_ && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

int64_t proc_status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream value(line.substr(field.size() + 1));
      int64_t v = -1;
      value >> v;
      return v;
    }
  }
  return -1;
}

std::map<std::string, std::string> open_fds(pid_t pid) {
  std::map<std::string, std::string> fds;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(it->path(), link_ec);
    fds[it->path().filename()] = link_ec ? "?" : target.string();
  }
  return fds;
}

std::set<std::string> shm_listing() {
  std::set<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/dev/shm", ec), end; !ec && it != end;
       it.increment(ec)) {
    names.insert(it->path().filename());
  }
  return names;
}

RssVerdict judge_rss(const std::vector<uint64_t>& samples, size_t warmup, size_t tail,
                     uint64_t slack_kib) {
  RssVerdict verdict;
  if (samples.size() < warmup + tail) {
    verdict.detail = "too few samples (" + std::to_string(samples.size()) + ") to judge";
    return verdict;
  }
  std::vector<uint64_t> settled(samples.begin() + static_cast<std::ptrdiff_t>(warmup),
                                samples.end());
  std::nth_element(settled.begin(), settled.begin() + static_cast<std::ptrdiff_t>(settled.size() / 2),
                   settled.end());
  verdict.median_kib = settled[settled.size() / 2];
  verdict.last_kib = samples.back();
  for (size_t i = samples.size() - tail; i < samples.size(); ++i) {
    if (samples[i] > verdict.median_kib + slack_kib) {
      verdict.flat = false;
      verdict.detail = "sample " + std::to_string(i) + " is " + std::to_string(samples[i]) +
                       " KiB, more than " + std::to_string(slack_kib) +
                       " KiB above the median " + std::to_string(verdict.median_kib) + " KiB";
      return verdict;
    }
  }
  return verdict;
}

namespace {

struct Field {
  const char* name;
  uint64_t proto::StatsBody::*member;
};
constexpr Field kHoldings[] = {
    {"guest_contexts", &proto::StatsBody::guest_contexts},
    {"host_connections", &proto::StatsBody::host_connections},
    {"host_datagram_handles", &proto::StatsBody::host_datagram_handles},
    {"queue_pairs", &proto::StatsBody::queue_pairs},
    {"queue_pair_bytes", &proto::StatsBody::queue_pair_bytes},
    {"doorbells", &proto::StatsBody::doorbells},
    {"ring_channels", &proto::StatsBody::ring_channels},
    {"ring_grants", &proto::StatsBody::ring_grants},
    {"pending_datagrams", &proto::StatsBody::pending_datagrams},
    {"pending_datagram_bytes", &proto::StatsBody::pending_datagram_bytes},
};
constexpr Field kCounters[] = {
    {"datagrams_routed", &proto::StatsBody::datagrams_routed},
    {"events_sent", &proto::StatsBody::events_sent},
    {"doorbells_rung", &proto::StatsBody::doorbells_rung},
};

}  // namespace

std::vector<std::string> stats_left_over(const proto::StatsBody& stats,
                                         const ExpectedHoldings& expected) {
  std::vector<std::string> problems;
  for (const Field& f : kHoldings) {
    uint64_t want = 0;
    if (f.member == &proto::StatsBody::host_connections) want = expected.host_connections;
    if (f.member == &proto::StatsBody::host_datagram_handles) {
      want = expected.host_datagram_handles;
    }
    if (f.member == &proto::StatsBody::doorbells) want = expected.host_doorbells;
    if (stats.*f.member != want) {
      problems.push_back(std::string(f.name) + " = " + std::to_string(stats.*f.member) +
                         ", expected " + std::to_string(want));
    }
  }
  return problems;
}

std::string describe_stats(const proto::StatsBody& stats) {
  std::string out;
  for (const Field& f : kHoldings) out += std::string(f.name) + "=" + std::to_string(stats.*f.member) + " ";
  for (const Field& f : kCounters) out += std::string(f.name) + "=" + std::to_string(stats.*f.member) + " ";
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace vmci::soak
