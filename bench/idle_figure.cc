// idle_figure.cc: see idle_figure.h.
#include "idle_figure.h"

#include <algorithm>
#include <cstdio>

namespace bench {
namespace {

// The maximum over runs of each quantity, per side.
struct IdleMaxima {
  ThreadsCost host, guest;
  ThreadsCost both() const {
    return {host.cpu_s + guest.cpu_s, host.switches + guest.switches};
  }
};

IdleMaxima maxima(const std::vector<IdleCost>& runs) {
  IdleMaxima m;
  auto widen = [](ThreadsCost& to, const ThreadsCost& c) {
    to.cpu_s = std::max(to.cpu_s, c.cpu_s);
    to.switches = std::max(to.switches, c.switches);
  };
  for (const IdleCost& c : runs) {
    widen(m.host, c.host);
    widen(m.guest, c.guest);
  }
  return m;
}

bool nothing(const ThreadsCost& c) { return c.cpu_s == 0 && c.switches == 0; }

void print_row(const char* label, const IdleMaxima& m) {
  std::printf("  %-34s %12.1f %12.1f %12llu %12llu\n", label, m.host.cpu_s * 1e6,
              m.guest.cpu_s * 1e6, static_cast<unsigned long long>(m.host.switches),
              static_cast<unsigned long long>(m.guest.switches));
}

std::string cost_text(const IdleCost& c) {
  char text[160];
  std::snprintf(text, sizeof text,
                "over %.2f s: host %.1f us CPU, %llu wake-ups; guest %.1f us CPU, %llu wake-ups",
                c.seconds, c.host.cpu_s * 1e6, static_cast<unsigned long long>(c.host.switches),
                c.guest.cpu_s * 1e6, static_cast<unsigned long long>(c.guest.switches));
  return text;
}

}  // namespace

void IdleFigure::run_once(bool ours_only, bool verbose) {
  ours_values.push_back(ours(params));
  if (!ours_only) baseline_values.push_back(baseline(params));
  if (!verbose) return;
  std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), "ours",
               cost_text(ours_values.back()).c_str());
  if (!ours_only) {
    std::fprintf(stderr, "  %-20s %-22s %s\n", name.c_str(), baseline_name.c_str(),
                 cost_text(baseline_values.back()).c_str());
  }
}

void print_idle_report(const std::vector<IdleFigure>& figures) {
  for (const IdleFigure& f : figures) {
    if (f.ours_values.empty()) continue;
    std::printf("\n%s: %s, idle %.1f s after %.1f s of quiet, %zu runs\n", f.name.c_str(),
                f.what.c_str(), f.params.idle_s, f.params.settle_s, f.ours_values.size());
    std::printf(
        "  over the idle window, max over runs; host: the threads of the embedded hostpeer and\n"
        "  host endpoint that serve the host's vSockets; guest: the guest process, all threads;\n"
        "  wake-ups: context switches\n");
    std::printf("  %-34s %12s %12s %12s %12s\n", "", "host CPU us", "guest CPU us", "host wake",
                "guest wake");
    const IdleMaxima ours = maxima(f.ours_values);
    print_row(f.ours_label.c_str(), ours);
    if (!f.baseline_values.empty()) print_row(f.baseline_label.c_str(), maxima(f.baseline_values));
    std::printf("  ours: no CPU time and no wake-up on either side: target  %s\n",
                nothing(ours.host) && nothing(ours.guest) ? "MET" : "NOT MET");
  }
  std::fflush(stdout);
}

nlohmann::ordered_json idle_comparison(const std::string& name, const std::string& statistic,
                                       double idle_s, const ThreadsCost& ours,
                                       const std::optional<ThreadsCost>& baseline,
                                       const std::string& baseline_name) {
  nlohmann::ordered_json out = {
      {"name", name},
      {"unit", "CPU seconds"},
      {"statistic", statistic},
      {"ours", ours.cpu_s},
      {"baseline", baseline ? nlohmann::ordered_json(baseline->cpu_s) : nullptr},
      {"baseline_name", baseline ? nlohmann::ordered_json(baseline_name) : nullptr},
      {"ratio", nullptr},
      {"target", 0},
      {"target_kind", "absolute: met is no CPU time and no wake-up"},
      {"better", "lower"},
      {"met", nothing(ours)},
      {"idle_seconds", idle_s},
      {"wakeups_max", ours.switches}};
  if (baseline) out["baseline_wakeups_max"] = baseline->switches;
  return out;
}

void add_idle_comparisons(const std::vector<IdleFigure>& figures, nlohmann::ordered_json& out) {
  for (const IdleFigure& f : figures) {
    if (f.ours_values.empty()) continue;
    const IdleMaxima ours = maxima(f.ours_values);
    std::optional<ThreadsCost> baseline;
    if (!f.baseline_values.empty()) baseline = maxima(f.baseline_values).both();
    nlohmann::ordered_json o = idle_comparison(
        f.name,
        "CPU time over the idle window of the host side (the embedded hostpeer's and host "
        "endpoint's threads) and the guest process, each its max over runs, summed",
        f.params.idle_s, ours.both(), baseline, f.baseline_name);
    o["connections"] = f.params.connections;
    o["ours_host_cpu_s"] = ours.host.cpu_s;
    o["ours_host_wakeups"] = ours.host.switches;
    o["ours_guest_cpu_s"] = ours.guest.cpu_s;
    o["ours_guest_wakeups"] = ours.guest.switches;
    out.push_back(o);
  }
}

}  // namespace bench
