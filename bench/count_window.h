// count_window.h: the measuring thread of a trial that counts events (a
// datagram received, a set-up cycle done) while other threads and
// processes make them: it waits for the first, sleeps through the warm-up,
// and reads the count at both ends of the window, so that it takes no CPU
// from the trial while it measures.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>

#include "process.h"
#include "stream.h"

namespace bench {

struct CountWindow {
  double warmup_s = 0.05;
  double window_s = 0.25;
  double stall_s = 10;  // no first event for this long: the trial failed
};

// `count` reads the events so far; `check` throws if the trial failed
// meanwhile (it is called while waiting for the first). Measurement::chunks
// is the events in the window.
inline Measurement count_window(const std::function<uint64_t()>& count, Child& child,
                                const CountWindow& w, const std::function<void()>& check) {
  using detail::Clock;
  const auto sleep_for = [](double s) {
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
  };
  const auto give_up = Clock::now() + std::chrono::duration<double>(w.stall_s);
  while (count() == 0) {
    child.check_running();
    check();
    if (Clock::now() > give_up) throw std::runtime_error("nothing happened");
    sleep_for(0.001);
  }
  sleep_for(w.warmup_s);
  const uint64_t before = count();
  const auto start = Clock::now();
  sleep_for(w.window_s);
  const uint64_t after = count();
  Measurement m;
  m.chunks = after - before;
  m.seconds = detail::seconds_between(start, Clock::now());
  return m;
}

}  // namespace bench
