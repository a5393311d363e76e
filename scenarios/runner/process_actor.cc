#include "process_actor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

namespace vmci::scenario {
namespace {

using json = nlohmann::json;

bool write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Lines from a descriptor; false at its end.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  bool next(std::string* line) {
    for (;;) {
      if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        *line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

}  // namespace

ProcessActor::ProcessActor(const json& spec, const std::string& program) {
  int down[2], up[2];
  if (::pipe2(down, O_CLOEXEC) != 0) throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  if (::pipe2(up, O_CLOEXEC) != 0) {
    ::close(down[0]);
    ::close(down[1]);
    throw std::runtime_error("pipe: " + std::string(std::strerror(errno)));
  }
  // Everything the child needs is made before fork: between fork and exec
  // only async-signal-safe calls (no allocation) in a threaded program.
  const std::string spec_text = spec.dump();
  std::vector<char> arg(spec_text.begin(), spec_text.end());
  arg.push_back('\0');
  std::vector<char> path(program.begin(), program.end());
  path.push_back('\0');
  char serve[] = "serve-actor";
  char* argv[] = {path.data(), serve, arg.data(), nullptr};
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the runner died already
    // Requests on fd 3, answers on fd 4, neither close-on-exec.
    int in = down[0], out = up[1];
    if (out == 3) out = ::dup(out);
    if (in == 4) in = ::dup(in);
    if (in < 0 || out < 0) ::_exit(127);
    if (in == 3 ? ::fcntl(3, F_SETFD, 0) < 0 : ::dup2(in, 3) < 0) ::_exit(127);
    if (out == 4 ? ::fcntl(4, F_SETFD, 0) < 0 : ::dup2(out, 4) < 0) ::_exit(127);
    ::execv(path.data(), argv);
    ::_exit(127);
  }
  ::close(down[0]);
  ::close(up[1]);
  to_child_ = down[1];
  from_child_ = up[0];
  reader_ = std::thread([this] { read_answers(); });
}

ProcessActor::~ProcessActor() {
  kill();
  reader_.join();
  ::close(to_child_);
  ::close(from_child_);
}

json ProcessActor::request(json request) {
  uint64_t id;
  {
    std::lock_guard lock(mutex_);
    if (gone_) return json{{"lost", gone_reason_}};
    id = next_id_++;
  }
  request["id"] = id;
  {
    std::lock_guard lock(write_mutex_);
    if (!write_all(to_child_, request.dump() + "\n")) lose_all("the actor's process is gone");
  }
  std::unique_lock lock(mutex_);
  answered_.wait(lock, [&] { return answers_.count(id) != 0 || gone_; });
  auto it = answers_.find(id);
  if (it == answers_.end()) return json{{"lost", gone_reason_}};
  json answer = std::move(it->second);
  answers_.erase(it);
  return answer;
}

bool ProcessActor::alive() {
  std::lock_guard lock(mutex_);
  return !gone_;
}

void ProcessActor::kill() {
  {
    std::lock_guard lock(mutex_);
    if (reaped_) return;
    reaped_ = true;
  }
  ::kill(pid_, SIGKILL);
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  lose_all("the actor's process was killed");
}

void ProcessActor::read_answers() {
  LineReader reader(from_child_);
  std::string line;
  while (reader.next(&line)) {
    json answer = json::parse(line, nullptr, false);
    if (answer.is_discarded() || !answer.contains("id") || !answer["id"].is_number()) continue;
    const auto id = answer["id"].get<uint64_t>();
    std::lock_guard lock(mutex_);
    answers_[id] = std::move(answer);
    answered_.notify_all();
  }
  lose_all("the actor's process ended");
}

void ProcessActor::lose_all(const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (gone_) return;
  gone_ = true;
  gone_reason_ = reason;
  answered_.notify_all();
}

void serve_requests(int in_fd, int out_fd, const std::function<json(const json&)>& handle) {
  std::mutex mutex;  // guards the count and the writes
  std::condition_variable done;
  size_t running = 0;
  LineReader reader(in_fd);
  std::string line;
  while (reader.next(&line)) {
    json request = json::parse(line, nullptr, false);
    if (request.is_discarded()) continue;
    {
      std::lock_guard lock(mutex);
      ++running;
    }
    std::thread([&, request = std::move(request)] {
      json answer = handle(request);
      answer["id"] = request.value("id", uint64_t{0});
      std::lock_guard lock(mutex);
      write_all(out_fd, answer.dump() + "\n");
      --running;
      done.notify_all();
    }).detach();
  }
  std::unique_lock lock(mutex);
  done.wait(lock, [&] { return running == 0; });
}

}  // namespace vmci::scenario
