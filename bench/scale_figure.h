// scale_figure.h: the scale_64_guests figures from run_scale_trial and its
// socket baseline (scale_guests.h): aggregate throughput against the
// sockets (target: ours at least as fast), hostpeer's memory beyond the
// queue memory (target: under 64 MiB) and its CPU time and wake-ups while
// every guest idles (target: none: nothing polls).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "scale_guests.h"

namespace bench {

struct ScaleFigure {
  ScaleParams params;
  std::vector<ScaleResult> ours, sockets;  // per run

  // One run: ours, then (unless ours_only) the sockets.
  void run_once(bool ours_only, bool verbose);
};

void print_scale_report(const ScaleFigure& figure);
// Three comparisons: throughput, memory, idle.
void add_scale_comparisons(const ScaleFigure& figure, nlohmann::ordered_json& out);

}  // namespace bench
