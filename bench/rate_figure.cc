// rate_figure.cc: see rate_figure.h.
#include "rate_figure.h"

#include <cstdio>

#include "stats.h"

namespace bench {
namespace {

double value_of(const RateFigure& f, const Measurement& m) {
  return f.bytes ? m.bytes_per_s() : m.chunks_per_s();
}

std::string shown(const RateFigure& f, double per_s) {
  char text[32];
  if (f.bytes) {
    std::snprintf(text, sizeof text, "%.3f GiB/s", per_s / (1024.0 * 1024 * 1024));
  } else if (per_s >= 1e6) {
    std::snprintf(text, sizeof text, "%.3f M/s", per_s / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f k/s", per_s / 1e3);
  }
  return text;
}

}  // namespace

void RateFigure::run_once(bool ours_only, bool verbose) {
  ours_values.push_back(value_of(*this, ours()));
  if (!ours_only) baseline_values.push_back(value_of(*this, baseline()));
  if (!verbose) return;
  std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), "ours", shown(*this, ours_values.back()).c_str());
  if (!ours_only) {
    std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), baseline_name.c_str(),
                 shown(*this, baseline_values.back()).c_str());
  }
}

void print_rate_report(const std::vector<RateFigure>& figures, int runs) {
  for (const RateFigure& f : figures) {
    std::printf("\n%s: %s, %d runs\n  %s\n", f.name.c_str(), f.unit.c_str(), runs, f.what.c_str());
    std::printf("  %-34s %12s %12s %12s\n", "", "min", "median", "max");
    const Summary ours = summarize(f.ours_values);
    std::printf("  %-34s %12s %12s %12s\n", f.ours_label.c_str(), shown(f, ours.min).c_str(),
                shown(f, ours.median).c_str(), shown(f, ours.max).c_str());
    if (f.baseline_values.empty()) continue;  // --ours-only
    const Summary base = summarize(f.baseline_values);
    std::printf("  %-34s %12s %12s %12s\n", f.baseline_label.c_str(), shown(f, base.min).c_str(),
                shown(f, base.median).c_str(), shown(f, base.max).c_str());
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
