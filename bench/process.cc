// process.cc: pinning, descriptors, mappings, the control page, starting and
// reaping the child, and the temp dir (see process.h).
#include "process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <thread>

namespace bench {

AllCpus::AllCpus() {
  if (::sched_getaffinity(0, sizeof saved_, &saved_) != 0) {
    throw std::runtime_error(errno_text("sched_getaffinity"));
  }
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &all);
  if (::sched_setaffinity(0, sizeof all, &all) != 0) {
    throw std::runtime_error(errno_text("sched_setaffinity(all)"));
  }
}

AllCpus::~AllCpus() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    throw std::runtime_error(errno_text("sched_setaffinity(CPU " + std::to_string(cpu) + ")"));
  }
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Mapping::Mapping(int fd, size_t size) : size_(size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw std::runtime_error(errno_text("mmap"));
  data_ = static_cast<uint8_t*>(p);
}

Mapping::~Mapping() { ::munmap(data_, size_); }

UniqueFd make_memfd(const char* name, size_t size) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
  if (fd.get() < 0) throw std::runtime_error(errno_text("memfd_create"));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    throw std::runtime_error(errno_text("ftruncate"));
  }
  return fd;
}

size_t fd_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error(errno_text("fstat"));
  return static_cast<size_t>(st.st_size);
}

namespace {
constexpr size_t kControlSize = 4096;
static_assert(sizeof(Control) <= kControlSize);
}  // namespace

ControlPage::ControlPage()
    : fd_(make_memfd("vmci-bench-control", kControlSize)), mapping_(fd_.get(), kControlSize) {
  new (mapping_.data()) Control();
}

ControlPage::ControlPage(int fd) : fd_(fd), mapping_(fd, kControlSize) {
  if (fd_size(fd) < kControlSize) throw std::runtime_error("control page too small");
}

Child::Child(const std::vector<std::string>& args, const std::vector<int>& inherit) {
  // Everything the child needs is built before the fork.
  std::vector<std::string> all{"vmci-bench"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (const auto& a : all) what_ += (what_.empty() ? "" : " ") + a;

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec.
    for (int fd : inherit) {
      if (::fcntl(fd, F_SETFD, 0) != 0) ::_exit(126);
    }
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
}

Child::Child(const std::string& path, const std::vector<std::string>& args, int cpu,
             int stdout_fd)
    : own_group_(true) {
  // Everything the child needs is built before the fork.
  std::vector<std::string> all{path};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (const auto& a : all) what_ += (what_.empty() ? "" : " ") + a;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) CPU_SET(cpu, &set);
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(errno_text("fork"));
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (::setpgid(0, 0) != 0 || ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ::_exit(126);
    if (::getppid() != parent) ::_exit(126);
    if (cpu >= 0 && ::sched_setaffinity(0, sizeof set, &set) != 0) ::_exit(126);
    if (stdout_fd >= 0 && ::dup2(stdout_fd, STDOUT_FILENO) < 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);  // (also done by the child: whichever runs first)
}

Child::~Child() {
  if (pid_ > 0) {
    if (own_group_) ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

std::string Child::describe(int status) const {
  if (WIFEXITED(status)) {
    return "child (" + what_ + ") exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return "child (" + what_ + ") killed by signal " + std::to_string(WTERMSIG(status));
  }
  return "child (" + what_ + ") ended";
}

void Child::check_running() {
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return;
  if (r == pid_) pid_ = -1;
  throw std::runtime_error(describe(status) + " before the trial ended");
}

void Child::wait_success(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0) throw std::runtime_error(errno_text("waitpid"));
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("child (" + what_ + ") did not exit");  // ~Child kills it
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(describe(status));
}

void die_with_parent(pid_t parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) throw std::runtime_error(errno_text("prctl"));
  if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/vmci-bench.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error(errno_text("mkdtemp"));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace bench
