// rate_figure.cc: see rate_figure.h.
#include "rate_figure.h"

#include <cstdio>

#include "stats.h"

namespace bench {
namespace {

std::string shown(double per_s) {
  char text[32];
  if (per_s >= 1e6) {
    std::snprintf(text, sizeof text, "%.3f M/s", per_s / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f k/s", per_s / 1e3);
  }
  return text;
}

}  // namespace

void RateFigure::run_once(bool ours_only, bool verbose) {
  ours_values.push_back(ours().chunks_per_s());
  if (!ours_only) baseline_values.push_back(baseline().chunks_per_s());
  if (!verbose) return;
  std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), "ours", shown(ours_values.back()).c_str());
  if (!ours_only) {
    std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), baseline_name.c_str(),
                 shown(baseline_values.back()).c_str());
  }
}

void print_rate_report(const std::vector<RateFigure>& figures, int runs) {
  for (const RateFigure& f : figures) {
    std::printf("\n%s: %s, %d runs\n  %s\n", f.name.c_str(), f.unit.c_str(), runs, f.what.c_str());
    std::printf("  %-34s %12s %12s %12s\n", "", "min", "median", "max");
    const Summary ours = summarize(f.ours_values);
    std::printf("  %-34s %12s %12s %12s\n", f.ours_label.c_str(), shown(ours.min).c_str(),
                shown(ours.median).c_str(), shown(ours.max).c_str());
    if (f.baseline_values.empty()) continue;  // --ours-only
    const Summary base = summarize(f.baseline_values);
    std::printf("  %-34s %12s %12s %12s\n", f.baseline_label.c_str(), shown(base.min).c_str(),
                shown(base.median).c_str(), shown(base.max).c_str());
    const double ratio = ours.median / base.median;
    std::printf("  ours/%-29s %12.3f   target >= %.2f  %s\n", f.baseline_name.c_str(), ratio,
                f.min_ratio, ratio >= f.min_ratio ? "MET" : "NOT MET");
  }
  std::fflush(stdout);
}

void add_rate_comparisons(const std::vector<RateFigure>& figures, nlohmann::ordered_json& out) {
  for (const RateFigure& f : figures) {
    if (f.baseline_values.empty()) continue;
    const Summary ours = summarize(f.ours_values);
    const Summary base = summarize(f.baseline_values);
    const double ratio = ours.median / base.median;
    out.push_back({{"name", f.name},
                   {"unit", f.unit},
                   {"ours", ours.median},
                   {"baseline", base.median},
                   {"baseline_name", f.baseline_name},
                   {"ratio", ratio},
                   {"target", f.min_ratio},
                   {"met", ratio >= f.min_ratio},
                   {"ours_min", ours.min},
                   {"ours_max", ours.max},
                   {"baseline_min", base.min},
                   {"baseline_max", base.max}});
  }
}

}  // namespace bench
