// server_thread.h: a thread of this process that serves one side of a
// trial (accepting connections, say) while the measuring thread sleeps:
// it runs one step after another until stopped, and keeps its failure
// for the measuring thread to rethrow.
//
//   bench::ServerThread server([&](const std::atomic<bool>& stopping) {
//     ...accept one connection and serve it...
//   }, [&] { ::shutdown(listening, SHUT_RDWR); });  // ends a blocked accept
//   ... server.check();  // throws what the thread threw, if it did
//   server.stop();       // or at destruction
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace bench {

class ServerThread {
 public:
  // `step(stopping)` serves once; it must return (or throw) soon after
  // `stopping` turns true, if need be once `interrupt` has been called.
  // An exception it throws ends the thread.
  explicit ServerThread(std::function<void(const std::atomic<bool>& stopping)> step,
                        std::function<void()> interrupt = {})
      : interrupt_(std::move(interrupt)), thread_([this, step = std::move(step)] {
          try {
            while (!stopping_.load(std::memory_order_acquire)) step(stopping_);
          } catch (const std::exception& e) {
            if (stopping_.load(std::memory_order_acquire)) return;  // stopped, not failed
            failure_ = e.what();
            failed_.store(true, std::memory_order_release);
          }
        }) {}
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() { stop(); }

  // Throws std::runtime_error with the thread's failure, if it failed
  // (a step that threw once stopping was set did not fail).
  void check() const {
    if (failed_.load(std::memory_order_acquire)) throw std::runtime_error(failure_);
  }
  // Stops the thread and waits for it.
  void stop() {
    if (!thread_.joinable()) return;
    stopping_.store(true, std::memory_order_release);
    if (interrupt_) interrupt_();
    thread_.join();
  }

 private:
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  std::string failure_;  // written before failed_
  std::function<void()> interrupt_;
  std::thread thread_;  // last: it starts once the rest is ready
};

}  // namespace bench
