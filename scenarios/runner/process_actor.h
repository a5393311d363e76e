// process_actor.h: the transport of a `"isolation": "process"` actor. The
// runner starts a child (this same program, `vmci-scenario serve-actor`),
// which holds the actor's connection, queue pairs and inbox and plays the
// actor's steps; they talk in JSON lines over two pipes (the child's fds 3
// and 4). Requests carry an id, answers repeat it, so steps of one actor in
// parallel branches run concurrently. The child dies with the runner
// (PR_SET_PDEATHSIG), and kill() is a real SIGKILL.
//
//   ProcessActor child(spec_json, &error);         // started
//   json answer = child.request({{"op", "connect"}, {"socket", path}});
//   child.kill();
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace vmci::scenario {

class ProcessActor {
 public:
  // Starts `program serve-actor SPEC` (`program`: vmci-scenario; by default
  // this very program) for the actor `spec` (its ActorSpec as JSON).
  // Throws std::runtime_error if it cannot.
  explicit ProcessActor(const nlohmann::json& spec, const std::string& program = "/proc/self/exe");
  // Kills the child if it still runs.
  ~ProcessActor();
  ProcessActor(const ProcessActor&) = delete;
  ProcessActor& operator=(const ProcessActor&) = delete;

  // Sends a request and waits for its answer; {"lost": reason} if the child
  // is gone (killed, crashed) before answering. Thread-safe.
  nlohmann::json request(nlohmann::json request);
  // SIGKILL, and waits until the child is reaped.
  void kill();
  pid_t pid() const { return pid_; }
  // False once the child is gone (killed, crashed, ended).
  bool alive();

 private:
  void read_answers();
  void lose_all(const std::string& reason);

  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::mutex write_mutex_;
  std::mutex mutex_;  // guards the fields below
  std::condition_variable answered_;
  std::map<uint64_t, nlohmann::json> answers_;
  uint64_t next_id_ = 1;
  bool gone_ = false;
  std::string gone_reason_;
  bool reaped_ = false;
  std::thread reader_;
};

// The child's side: reads requests from `in_fd` and answers on `out_fd`,
// calling `handle` for each (on a thread of its own, so that requests run
// concurrently) until the input ends. Returns then.
void serve_requests(int in_fd, int out_fd,
                    const std::function<nlohmann::json(const nlohmann::json&)>& handle);

}  // namespace vmci::scenario
