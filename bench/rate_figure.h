// rate_figure.h: a figure that counts events per second (datagrams a host
// receives, set-up cycles, connections) or bytes per second (a vSockets
// stream) for ours and one baseline: each run takes one trial of each, one
// after the other, and the report gives min / median / max of each and the
// ratio of medians against the target (higher is better).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stream.h"

namespace bench {

struct RateFigure {
  std::string name;            // e.g. datagram_rate_64B
  std::string unit;            // e.g. datagrams/s
  std::string what;            // one line under the name in the report
  std::string ours_label;
  std::string baseline_name;   // in the JSON
  std::string baseline_label;  // in the report
  double min_ratio;            // target: ours / baseline >= this
  // One trial each; Measurement::chunks counts the events.
  std::function<Measurement()> ours, baseline;
  std::vector<double> ours_values, baseline_values;  // per run
  bool bytes = false;  // the value is Measurement::bytes_per_s (shown in GiB/s), not chunks_per_s

  // One run: ours, then (unless ours_only) the baseline.
  void run_once(bool ours_only, bool verbose);
};

void print_rate_report(const std::vector<RateFigure>& figures, int runs);
// One comparison per figure that has baseline values.
void add_rate_comparisons(const std::vector<RateFigure>& figures, nlohmann::ordered_json& out);

}  // namespace bench
