// idle_figure.h: a figure of what idle connections cost (vsock_idle_64):
// ours and a baseline, each run one trial of each (idle_cost.h: the host
// side's threads in this process, and the guest process, over the idle
// window). The target is absolute, as scale_64_guests_idle's:
// over every run, no CPU time and no wake-up (context switch) on either
// side; the baseline shows what the measurement reads for connections
// that cost nothing.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "idle_cost.h"

namespace bench {

struct IdleFigure {
  std::string name;            // e.g. vsock_idle_64
  std::string what;            // one line under the name in the report
  std::string ours_label;
  std::string baseline_name;   // in the JSON
  std::string baseline_label;  // in the report
  IdleParams params;
  std::function<IdleCost(const IdleParams&)> ours, baseline;
  std::vector<IdleCost> ours_values, baseline_values;  // per run

  // One run: ours, then (unless ours_only) the baseline.
  void run_once(bool ours_only, bool verbose);
};

void print_idle_report(const std::vector<IdleFigure>& figures);
// One comparison per figure (with the baseline's maxima, if it ran).
void add_idle_comparisons(const std::vector<IdleFigure>& figures, nlohmann::ordered_json& out);

// The JSON object of an idle target (absolute: met is no CPU time and no
// wake-up): `ours` is the maximum over runs; `baseline`, if given, too.
nlohmann::ordered_json idle_comparison(const std::string& name, const std::string& statistic,
                                       double idle_s, const ThreadsCost& ours,
                                       const std::optional<ThreadsCost>& baseline,
                                       const std::string& baseline_name);

}  // namespace bench
