// count_window.h: the measuring thread of a trial that counts events (a
// datagram received, a set-up cycle done, a connection made and closed)
// while other threads and processes make them: it waits for the first,
// sleeps through the warm-up, and reads the count at both ends of the
// window, so that it takes no CPU from the trial while it measures.
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

// A trial whose child counts the cycles it completes in control.cycles:
// counts them over the window (count_window), then stops the child
// (control.stop) and waits for it to exit 0. `check` throws if this
// process's side failed; it is called while waiting and once the child
// has exited. Throws if no cycle completed in the window.
inline Measurement count_child_cycles(Control& control, Child& child, const CountWindow& w,
                                      const std::function<void()>& check) {
  const Measurement m = count_window(
      [&] { return control.cycles.load(std::memory_order_acquire); }, child, w, check);
  control.stop.store(1, std::memory_order_release);
  child.wait_success(30);
  check();
  if (m.chunks == 0) throw std::runtime_error("no cycle completed in the window");
  return m;
}

}  // namespace bench
