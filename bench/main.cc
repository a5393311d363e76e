// main.cc: vmci-bench, queue-pair throughput, doorbell round trips,
// doorbell rings while the owner is awake and vSockets streams, measured
// beside their baselines.
//
//   vmci-bench [--quick | --smoke] [--runs N] [--window SECONDS] [--rounds N]
//              [--figure NAME] [--via-thread [--spin]] [--hostpeer-cpu N] [--guests N]
//              [--verbose] [--json FILE]
//
// For each run, for each chunk size, it runs a trial of the queue pair
// (ours), the shared-memory ring (baseline A) and the socketpair
// (baseline B) one after the other, so drift hits all three alike; then
// each rate figure's ours and baseline (datagram_rate_64B, qp_setup_rate,
// vsock_stream_64KiB, vsock_preload_stream_64KiB, vsock_connect_rate:
// rate_figure.h); then a trial of
// each selected round-trip figure's ours (the doorbells, embedded and
// daemon; vsock_rr_64B) and of the ping-pongs they are shown beside; then
// doorbell_ring_awake's ours and raw ring (ring_awake.h); then
// scale_64_guests' (scale_figure.h); then scale_1024_guests'
// (many_guests_figure.h); then vsock_idle_64's (idle_figure.h).
// Then it prints, per figure, min / median
// / max of each and the ratio of medians against its target, and with
// --json writes the comparisons. The exit status is 0 whether or not
// targets are met; 1 if the benchmark itself failed (a process died, data
// did not match); 2 for a bad command line. (`--child ...` is a trial's
// other process: see trial.h.)
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "datagram_rate.h"
#include "doorbell_rtt.h"
#include "idle_figure.h"
#include "many_guests_figure.h"
#include "pingpong_baseline.h"
#include "preload_stream.h"
#include "process.h"
#include "qp_setup.h"
#include "qpair_throughput.h"
#include "rate_figure.h"
#include "scale_figure.h"
#include "ring_awake.h"
#include "ring_baseline.h"
#include "socket_baseline.h"
#include "rtt.h"
#include "stats.h"
#include "trial.h"
#include "vsock_baselines.h"
#include "vsock_bench.h"

namespace {

using bench::Measurement;
using bench::StreamParams;

enum Transport { kOurs, kRing, kSocket, kTransports };
const char* const kTransportName[kTransports] = {"ours", "shm_spsc_ring", "unix_socketpair"};
const char* const kTransportLabel[kTransports] = {"ours (queue pair)", "baseline A: shm SPSC ring",
                                                  "baseline B: unix socketpair"};

struct Target {
  Transport baseline;
  double min_ratio;
};

struct Figure {
  std::string name;
  size_t chunk;
  bool messages;  // messages/s, else bytes/s
  std::vector<Target> targets;
  // Per transport, one value per run.
  std::vector<double> values[kTransports];

  const char* unit() const { return messages ? "messages/s" : "bytes/s"; }
  double value_of(const Measurement& m) const {
    return messages ? m.chunks_per_s() : m.bytes_per_s();
  }
  std::string shown(double v) const {
    char text[32];
    if (messages) {
      std::snprintf(text, sizeof text, "%.2f M/s", v / 1e6);
    } else {
      std::snprintf(text, sizeof text, "%.3f GiB/s", v / (1024.0 * 1024 * 1024));
    }
    return text;
  }
};

std::string chunk_text(size_t chunk) {
  return chunk >= 1024 ? std::to_string(chunk / 1024) + " KiB" : std::to_string(chunk) + " B";
}

// Round trips: ours (one of the doorbell paths, or a vSockets stream)
// against the ping-pongs.
enum RttTransport {
  kDoorbellEmbedded,
  kDoorbellDaemon,
  kVsockRr,
  kFutex,
  kSocketPingPong,
  kSocketPingPong64,
  kRttTransports
};
const char* const kRttName[kRttTransports] = {
    "doorbell_embedded", "doorbell_daemon",     "vsock_rr",
    "futex_pingpong",    "socketpair_pingpong", "socketpair_pingpong_64B"};
const char* const kRttLabel[kRttTransports] = {
    "ours (doorbell, embedded)",      "ours (doorbell, daemon)",
    "ours (vSockets stream)",         "baseline: futex ping-pong",
    "baseline: socketpair ping-pong", "baseline: socketpair, 64 B"};
bool is_doorbell(RttTransport t) { return t == kDoorbellEmbedded || t == kDoorbellDaemon; }

struct RttTarget {
  RttTransport baseline;
  double max_ratio;  // ours' p50 / the baseline's p50, lower is better
};

struct RttFigure {
  std::string name;
  std::string what;  // one line under the name in the report
  RttTransport ours;
  std::vector<RttTransport> baselines;  // shown beside ours, in this order
  std::vector<RttTarget> targets;       // some of them
};

// Per transport, one result per run.
using RttResults = std::vector<bench::RttResult>[kRttTransports];

// Per stage of ours' round trip (doorbell trials), the median over runs of
// its p50.
std::vector<bench::Stage> stage_medians(const std::vector<bench::RttResult>& results) {
  std::vector<bench::Stage> out;
  if (results.empty()) return out;
  for (size_t i = 0; i < results.front().stages.size(); ++i) {
    std::vector<double> values;
    for (const auto& r : results) values.push_back(r.stages.at(i).p50_ns);
    out.push_back({results.front().stages[i].name, bench::summarize(values).median});
  }
  return out;
}

// The rings of ours' timed round trips, per side, summed over the runs.
struct RttRingTotals {
  std::optional<bench::RingPaths> guest, host;  // host: daemon (a Driver) only
  std::optional<uint64_t> hostpeer;             // embedded: rings through hostpeer, both sides'
};

RttRingTotals ring_totals(const std::vector<bench::RttResult>& results) {
  RttRingTotals totals;
  auto add = [](auto& total, const auto& value) {
    if (!value) return;
    if (!total) total.emplace();
    *total += *value;
  };
  for (const bench::RttResult& r : results) {
    add(totals.guest, r.guest_rings);
    add(totals.host, r.host_rings);
    add(totals.hostpeer, r.hostpeer_rings);
  }
  return totals;
}

// The embedded host's rings: calls into hostpeer's core in this process (it
// is not a Driver: no ring channel), i.e. hostpeer's count less the guest's
// rings through it.
bench::RingPaths embedded_host_rings(const RttRingTotals& totals) {
  const uint64_t guest = totals.guest ? totals.guest->through_hostpeer : 0;
  return {0, 0, *totals.hostpeer - guest};
}

void print_ring_totals(const std::vector<bench::RttResult>& results, int runs, int rounds) {
  const RttRingTotals totals = ring_totals(results);
  if (!totals.guest) return;
  std::printf(
      "  ours' rings over the timed round trips, %d runs x %d (in a ping-pong every ring\n"
      "  finds its peer asleep: one FUTEX_WAKE per ring is expected, as in the futex one):\n",
      runs, rounds);
  std::printf("    guest rings: %s\n", bench::describe(*totals.guest, "the host slept").c_str());
  if (totals.host) {
    std::printf("    host rings:  %s\n", bench::describe(*totals.host, "the guest slept").c_str());
  }
  if (totals.hostpeer) {
    std::printf(
        "    host rings:  %llu, each a call into the embedded hostpeer (no ring channel;\n"
        "                 hostpeer counted %llu rings through it, the guest's included)\n",
        static_cast<unsigned long long>(embedded_host_rings(totals).through_hostpeer),
        static_cast<unsigned long long>(*totals.hostpeer));
  }
}

nlohmann::ordered_json paths_json(const bench::RingPaths& paths) {
  return {{"direct", paths.direct},
          {"direct_woke", paths.direct_woke},
          {"through_hostpeer", paths.through_hostpeer}};
}

nlohmann::ordered_json rtt_ring_paths_json(const std::vector<bench::RttResult>& results) {
  const RttRingTotals totals = ring_totals(results);
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  out["counted_over"] = "the timed round trips of all runs";
  if (totals.guest) out["guest"] = paths_json(*totals.guest);
  if (totals.host) out["host"] = paths_json(*totals.host);
  if (totals.hostpeer) {
    out["host"] = paths_json(embedded_host_rings(totals));
    out["hostpeer_doorbells_rung"] = *totals.hostpeer;
  }
  return out;
}

bench::Summary summarize_rtt(const std::vector<bench::RttResult>& results,
                             double bench::RttResult::*field) {
  std::vector<double> values;
  for (const auto& r : results) values.push_back(r.*field);
  return bench::summarize(values);
}

void print_report(const std::vector<Figure>& figures, int runs, const StreamParams& p) {
  if (figures.empty()) return;
  std::printf(
      "vmci-bench: guest -> host streaming, 1 MiB queues, %d runs, warm-up %.2f s, "
      "window %.2f s,\nconsumer on CPU %d, producer on CPU %d, chunks stamped and checked\n",
      runs, p.warmup_s, p.window_s, bench::kConsumerCpu, bench::kProducerCpu);
  for (const Figure& f : figures) {
    std::printf("\n%s: %s, %s chunks\n", f.name.c_str(), f.unit(), chunk_text(f.chunk).c_str());
    std::printf("  %-28s %14s %14s %14s\n", "", "min", "median", "max");
    bench::Summary s[kTransports];
    for (int t = 0; t < kTransports; ++t) {
      if (f.values[t].empty()) continue;  // --ours-only
      s[t] = bench::summarize(f.values[t]);
      std::printf("  %-28s %14s %14s %14s\n", kTransportLabel[t], f.shown(s[t].min).c_str(),
                  f.shown(s[t].median).c_str(), f.shown(s[t].max).c_str());
    }
    for (int t = kRing; t < kTransports; ++t) {
      if (f.values[t].empty()) continue;
      const double ratio = s[kOurs].median / s[t].median;
      std::printf("  ours/%-23s %14.3f", kTransportName[t], ratio);
      for (const Target& target : f.targets) {
        if (target.baseline != t) continue;
        std::printf("   target >= %.2f  %s", target.min_ratio,
                    ratio >= target.min_ratio ? "MET" : "NOT MET");
      }
      std::printf("\n");
    }
  }
  std::fflush(stdout);
}

std::string micros(double ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", ns / 1000);
  return text;
}

// How the doorbell figures' pinger waits, for the report's header.
const char* pinger_text(const bench::RttParams& p) {
  if (!p.via_thread) {
    return ";\nthe doorbell figures' pinger is the host's doorbell callback, which rings the next "
           "round itself";
  }
  if (p.spin) {
    return ", but the doorbell figures' pinger:\na measuring thread spins on an atomic count "
           "(--spin)";
  }
  return ";\nthe doorbell figures' pinger is a measuring thread, on a std::condition_variable "
         "(--via-thread)";
}

std::string cpu_text(int cpu) { return cpu < 0 ? "no CPU (not pinned)" : "CPU " + std::to_string(cpu); }

void print_rtt_report(const std::vector<RttFigure>& figures, const RttResults& results, int runs,
                      const bench::RttParams& p, bool after_streaming) {
  if (figures.empty()) return;
  const bool doorbells =
      std::ranges::any_of(figures, [](const RttFigure& f) { return is_doorbell(f.ours); });
  std::printf(
      "%svmci-bench: round trips, %d runs of %d timed (after %d warm-up), every one timed;\n"
      "pinger / host side on CPU %d, ponger / guest on CPU %d%s;\n"
      "every waiter sleeps in the kernel%s\n",
      after_streaming ? "\n" : "", runs, p.rounds, p.warmup, bench::kConsumerCpu,
      bench::kProducerCpu,
      doorbells ? (", daemon's hostpeer on " + cpu_text(p.hostpeer_cpu)).c_str() : "",
      doorbells ? pinger_text(p) : "");
  for (const RttFigure& f : figures) {
    std::printf("\n%s: round-trip time in us, p50 and p99 of each run; min / median / max over runs\n",
                f.name.c_str());
    if (!f.what.empty()) std::printf("  %s\n", f.what.c_str());
    std::printf("  %-31s %8s %8s %8s   %8s %8s %8s  %9s\n", "", "p50 min", "median", "max",
                "p99 min", "median", "max", "ctx sw/rt");
    bench::Summary p50[kRttTransports], p99[kRttTransports];
    std::vector<RttTransport> shown{f.ours};
    shown.insert(shown.end(), f.baselines.begin(), f.baselines.end());
    for (RttTransport t : shown) {
      if (results[t].empty()) continue;  // --ours-only
      p50[t] = summarize_rtt(results[t], &bench::RttResult::p50_ns);
      p99[t] = summarize_rtt(results[t], &bench::RttResult::p99_ns);
      const double switches = summarize_rtt(results[t], &bench::RttResult::switches_per_rtt).median;
      std::printf("  %-31s %8s %8s %8s   %8s %8s %8s  %9.2f\n", kRttLabel[t],
                  micros(p50[t].min).c_str(), micros(p50[t].median).c_str(),
                  micros(p50[t].max).c_str(), micros(p99[t].min).c_str(),
                  micros(p99[t].median).c_str(), micros(p99[t].max).c_str(), switches);
    }
    for (RttTransport t : f.baselines) {
      if (results[t].empty()) continue;
      const double ratio = p50[f.ours].median / p50[t].median;
      std::printf("  ours/%-26s p50 %7.3f  (p99 %.3f)", kRttName[t], ratio,
                  p99[f.ours].median / p99[t].median);
      for (const RttTarget& target : f.targets) {
        if (target.baseline != t) continue;
        std::printf("   target <= %.2f  %s", target.max_ratio,
                    ratio <= target.max_ratio ? "MET" : "NOT MET");
      }
      std::printf("\n");
    }
    const auto stages = stage_medians(results[f.ours]);
    if (!stages.empty()) std::printf("  ours stage by stage, us (p50 of each run, median over runs):\n");
    for (const bench::Stage& stage : stages) {
      std::printf("    %-40s %8s\n", stage.name.c_str(), micros(stage.p50_ns).c_str());
    }
    print_ring_totals(results[f.ours], runs, p.rounds);
  }
  std::fflush(stdout);
}

// doorbell_ring_awake: per run, one result of ours and one of the raw ring.
struct AwakeResults {
  std::vector<bench::RingAwakeResult> ours, baseline;
};
constexpr const char* kAwakeName = "doorbell_ring_awake";
constexpr const char* kScaleName = "scale_64_guests";
constexpr const char* kManyGuestsName = "scale_1024_guests";
constexpr const char* kAwakeBaselineName = "shm_fetch_or_ring";
constexpr double kAwakeTarget = 0.001;  // rings making a system call, per ring, at most

template <typename Value>
bench::Summary summarize_awake(const std::vector<bench::RingAwakeResult>& results, Value&& value) {
  std::vector<double> values;
  for (const auto& r : results) values.push_back(value(r));
  return bench::summarize(values);
}

double ns_per_ring(const bench::RingAwakeResult& r) { return r.ns_per_ring; }
double system_calls_per_ring(const bench::RingAwakeResult& r) { return r.system_calls_per_ring(); }

bench::RingPaths total_paths(const std::vector<bench::RingAwakeResult>& results) {
  bench::RingPaths total;
  for (const auto& r : results) total += r.paths;
  return total;
}

uint64_t total_hostpeer_rings(const std::vector<bench::RingAwakeResult>& results) {
  uint64_t total = 0;
  for (const auto& r : results) total += r.hostpeer_rings.value_or(0);
  return total;
}

// The raw ring's rings: "N = a without a system call + b with FUTEX_WAKE".
std::string raw_rings_text(const bench::RingPaths& raw) {
  char text[160];
  std::snprintf(text, sizeof text, "%llu = %llu without a system call + %llu with FUTEX_WAKE",
                static_cast<unsigned long long>(raw.total()),
                static_cast<unsigned long long>(raw.direct),
                static_cast<unsigned long long>(raw.direct_woke));
  return text;
}

void print_awake_row(const char* label, const std::vector<bench::RingAwakeResult>& results) {
  const bench::Summary ns = summarize_awake(results, ns_per_ring);
  std::printf("  %-31s %8.1f %8.1f %8.1f  %12.2g\n", label, ns.min, ns.median, ns.max,
              summarize_awake(results, system_calls_per_ring).median);
}

void print_awake_report(const AwakeResults& a, int runs, uint64_t rings, bool after_others) {
  if (a.ours.empty()) return;
  std::printf(
      "%svmci-bench: %s, %d runs; per run the guest (CPU %d) rings the host's doorbell\n"
      "(CPU %d) %llu times back to back while the host's callback is busy (the owner awake, not\n"
      "waiting for rings) from the first ring on; the rings after the first are timed\n",
      after_others ? "\n" : "", kAwakeName, runs, bench::kProducerCpu, bench::kConsumerCpu,
      static_cast<unsigned long long>(rings));
  std::printf("\n%s: ns per ring (one doorbell_notify call); min / median / max over runs\n",
              kAwakeName);
  std::printf("  %-31s %8s %8s %8s  %12s\n", "", "min", "median", "max", "syscalls/ring");
  print_awake_row("ours (doorbell_notify)", a.ours);
  if (!a.baseline.empty()) {
    print_awake_row("baseline: shm fetch_or ring", a.baseline);
    std::printf("  ours/%-26s ns/ring %.3f\n", kAwakeBaselineName,
                summarize_awake(a.ours, ns_per_ring).median /
                    summarize_awake(a.baseline, ns_per_ring).median);
  }
  const double ours = summarize_awake(a.ours, system_calls_per_ring).median;
  std::printf("  ours: rings making a system call, per ring (median of runs) %.2g   target <= %g  %s\n",
              ours, kAwakeTarget, ours <= kAwakeTarget ? "MET" : "NOT MET");
  std::printf("  ours' rings, %d runs x %llu (hostpeer counted %llu through it):\n    %s\n", runs,
              static_cast<unsigned long long>(rings),
              static_cast<unsigned long long>(total_hostpeer_rings(a.ours)),
              bench::describe(total_paths(a.ours), "the host slept").c_str());
  if (!a.baseline.empty()) {
    std::printf("  raw rings, %d runs x %llu:\n    %s (the owner slept)\n", runs,
                static_cast<unsigned long long>(rings),
                raw_rings_text(total_paths(a.baseline)).c_str());
  }
  std::fflush(stdout);
}

nlohmann::ordered_json awake_comparison(const AwakeResults& a, uint64_t rings) {
  const double ours = summarize_awake(a.ours, system_calls_per_ring).median;
  const double baseline = summarize_awake(a.baseline, system_calls_per_ring).median;
  const bench::Summary ours_ns = summarize_awake(a.ours, ns_per_ring);
  const bench::Summary baseline_ns = summarize_awake(a.baseline, ns_per_ring);
  nlohmann::ordered_json out = {
      {"name", kAwakeName},
      {"unit", "syscalls/ring"},
      {"statistic", "rings that made a system call, per ring; median over runs"},
      {"ours", ours},
      {"baseline", baseline},
      {"baseline_name", kAwakeBaselineName},
      {"ratio", baseline > 0 ? nlohmann::ordered_json(ours / baseline) : nlohmann::ordered_json()},
      {"target", kAwakeTarget},
      {"target_kind", "absolute: met is ours <= target"},
      {"better", "lower"},
      {"met", ours <= kAwakeTarget},
      {"ours_max", summarize_awake(a.ours, system_calls_per_ring).max},
      {"rings_per_run", rings},
      {"runs", a.ours.size()},
      {"ours_ns_per_ring", ours_ns.median},
      {"ours_ns_per_ring_min", ours_ns.min},
      {"ours_ns_per_ring_max", ours_ns.max},
      {"baseline_ns_per_ring", baseline_ns.median},
      {"baseline_ns_per_ring_min", baseline_ns.min},
      {"baseline_ns_per_ring_max", baseline_ns.max},
      {"ns_per_ring_ratio", ours_ns.median / baseline_ns.median}};
  out["ours_ring_paths"] = {{"counted_over", "all rings of all runs"},
                            {"guest", paths_json(total_paths(a.ours))},
                            {"hostpeer_doorbells_rung", total_hostpeer_rings(a.ours)}};
  return out;
}

nlohmann::ordered_json comparisons(const std::vector<Figure>& figures,
                                   const std::vector<bench::RateFigure>& rate_figures,
                                   const bench::ScaleFigure& scale,
                                   const bench::ManyGuestsFigure& many_guests,
                                   const std::vector<bench::IdleFigure>& idle_figures,
                                   const std::vector<RttFigure>& rtt_figures,
                                   const RttResults& rtt_results, const AwakeResults& awake,
                                   uint64_t awake_rings) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Figure& f : figures) {
    const bench::Summary ours = bench::summarize(f.values[kOurs]);
    for (const Target& target : f.targets) {
      if (f.values[target.baseline].empty()) continue;  // --ours-only
      const bench::Summary baseline = bench::summarize(f.values[target.baseline]);
      const double ratio = ours.median / baseline.median;
      out.push_back({{"name", f.name},
                     {"unit", f.unit()},
                     {"ours", ours.median},
                     {"baseline", baseline.median},
                     {"baseline_name", kTransportName[target.baseline]},
                     {"ratio", ratio},
                     {"target", target.min_ratio},
                     {"met", ratio >= target.min_ratio},
                     {"ours_min", ours.min},
                     {"ours_max", ours.max},
                     {"baseline_min", baseline.min},
                     {"baseline_max", baseline.max}});
    }
  }
  bench::add_rate_comparisons(rate_figures, out);
  bench::add_scale_comparisons(scale, out);
  bench::add_many_guests_comparisons(many_guests, out);
  bench::add_idle_comparisons(idle_figures, out);
  for (const RttFigure& f : rtt_figures) {
    const auto& ours = rtt_results[f.ours];
    for (const RttTarget& target : f.targets) {
      const auto& baseline = rtt_results[target.baseline];
      if (baseline.empty()) continue;  // --ours-only
      const double ours_p50 = summarize_rtt(ours, &bench::RttResult::p50_ns).median;
      const double baseline_p50 = summarize_rtt(baseline, &bench::RttResult::p50_ns).median;
      const double ratio = ours_p50 / baseline_p50;
      out.push_back(
          {{"name", f.name},
           {"unit", "ns"},
           {"statistic", "p50"},
           {"ours", ours_p50},
           {"baseline", baseline_p50},
           {"baseline_name", kRttName[target.baseline]},
           {"ratio", ratio},
           {"target", target.max_ratio},
           {"better", "lower"},
           {"met", ratio <= target.max_ratio},
           {"ours_p99", summarize_rtt(ours, &bench::RttResult::p99_ns).median},
           {"baseline_p99", summarize_rtt(baseline, &bench::RttResult::p99_ns).median},
           {"ours_context_switches_per_rtt",
            summarize_rtt(ours, &bench::RttResult::switches_per_rtt).median},
           {"baseline_context_switches_per_rtt",
            summarize_rtt(baseline, &bench::RttResult::switches_per_rtt).median}});
      if (!is_doorbell(f.ours)) continue;
      nlohmann::ordered_json stages = nlohmann::ordered_json::object();
      for (const bench::Stage& stage : stage_medians(ours)) stages[stage.name] = stage.p50_ns;
      out.back()["ours_stages_p50_ns"] = stages;
      out.back()["ours_ring_paths"] = rtt_ring_paths_json(ours);
    }
  }
  if (!awake.baseline.empty()) {  // not --ours-only
    out.push_back(awake_comparison(awake, awake_rings));
  }
  return out;
}

// One run's trials of doorbell_ring_awake: ours, then (unless ours_only)
// the raw ring.
void run_awake_trials(bench::DoorbellBench& doorbells, const bench::RingAwakeParams& p,
                      bool ours_only, bool verbose, AwakeResults& results) {
  results.ours.push_back(
      bench::run_ring_awake_trial(doorbells.embedded_hostpeer(), doorbells.embedded_host(), p));
  if (!ours_only) results.baseline.push_back(bench::run_raw_ring_trial(p));
  if (!verbose) return;
  auto show = [](const char* name, const bench::RingAwakeResult& r, const std::string& rings) {
    std::fprintf(stderr, "  %-20s %.1f ns/ring, rings %s\n", name, r.ns_per_ring, rings.c_str());
  };
  const bench::RingAwakeResult& ours = results.ours.back();
  show(kAwakeName, ours, bench::describe(ours.paths, "the host slept"));
  if (ours_only) return;
  const bench::RingAwakeResult& raw = results.baseline.back();
  show(kAwakeBaselineName, raw, raw_rings_text(raw.paths));
}

struct Options {
  bool quick = false;
  bool smoke = false;  // quick, one run (set after parsing)
  int runs = 5;
  double window = 0;  // 0: the default
  int rounds = 0;     // 0: the default
  std::string only;
  bool via_thread = false;
  bool spin = false;
  bool ours_only = false;
  int hostpeer_cpu = bench::kConsumerCpu;
  int guests = 0;  // scale_1024_guests; 0: the default
  bool verbose = false;
  std::string json_path;
};

int run(const Options& o) {
  StreamParams params;
  params.warmup_s = o.quick ? 0.03 : 0.05;
  params.window_s = o.window > 0 ? o.window : o.quick ? 0.1 : 0.25;
  bench::RttParams rtt_params;
  rtt_params.warmup = o.quick ? 200 : 1000;
  rtt_params.rounds = o.rounds > 0 ? o.rounds : o.quick ? 2000 : 20000;
  rtt_params.via_thread = o.via_thread;
  rtt_params.spin = o.spin;
  rtt_params.hostpeer_cpu = o.hostpeer_cpu;
  bench::RingAwakeParams awake_params;
  awake_params.rings = o.quick ? 20000 : 200000;

  std::vector<Figure> figures = {
      {"qp_throughput_64KiB", 65536, false, {{kRing, 0.8}, {kSocket, 1.5}}, {}},
      {"qp_throughput_4KiB", 4096, false, {{kRing, 0.7}}, {}},
      {"qp_msg_rate_64B", 64, true, {{kRing, 0.5}}, {}},
  };
  std::vector<RttFigure> rtt_figures = {
      {"doorbell_rtt_embedded", "", kDoorbellEmbedded, {kFutex, kSocketPingPong}, {{kFutex, 1.5}}},
      {"doorbell_rtt_daemon", "", kDoorbellDaemon, {kFutex, kSocketPingPong}, {{kFutex, 1.5}}},
      {"vsock_rr_64B",
       "a 64-byte request host -> guest and a 64-byte answer over a vSockets stream, both sides "
       "blocking in read, every byte checked",
       kVsockRr,
       {kSocketPingPong64},
       {{kSocketPingPong64, 1.5}}},
  };
  bench::RateParams rate_params;
  rate_params.warmup_s = params.warmup_s;
  rate_params.window_s = params.window_s;
  bench::SetupParams setup_params;
  setup_params.warmup_s = params.warmup_s;
  setup_params.window_s = params.window_s;
  std::optional<bench::DatagramRateBench> datagrams;
  std::optional<bench::QpSetupBench> setups;
  std::optional<bench::VsockBench> vsock;
  std::optional<bench::PreloadStreamBench> preload;
  const bench::CountWindow connect_window{params.warmup_s, params.window_s, 10};
  StreamParams vsock_stream_params = params;
  vsock_stream_params.chunk = 64 * 1024;
  vsock_stream_params.every_byte = true;
  std::vector<bench::RateFigure> rate_figures = {
      {"datagram_rate_64B", "datagrams/s",
       "guest -> host endpoint, 64-byte payloads, each send's result checked, every datagram "
       "stamped and checked",
       "ours (datagram_send)", "unix_seqpacket_socketpair", "baseline: SOCK_SEQPACKET socketpair",
       1.0, [&] { return datagrams->run_trial(rate_params); },
       [&] { return bench::run_seqpacket_trial(rate_params); }, {}, {}},
      {"datagram_rate_64B_host_to_guest", "datagrams/s",
       "host endpoint (a host connection in another process) -> guest, 64-byte payloads, each "
       "send's result checked, every datagram stamped and checked",
       "ours (datagram_send)", "unix_seqpacket_socketpair", "baseline: SOCK_SEQPACKET socketpair",
       1.0, [&] { return datagrams->run_host_to_guest_trial(rate_params); },
       [&] { return bench::run_seqpacket_trial(rate_params); }, {}, {}},
      {"datagram_rate_64B_host_to_host", "datagrams/s",
       "host connection in another process -> embedded host endpoint, 64-byte payloads, every "
       "datagram through hostpeer (no lanes between hosts), each send's result checked",
       "ours (datagram_send)", "unix_seqpacket_socketpair", "baseline: SOCK_SEQPACKET socketpair",
       0.03, [&] { return datagrams->run_host_to_host_trial(rate_params); },
       [&] { return bench::run_seqpacket_trial(rate_params); }, {}, {}},
      {"qp_setup_rate", "cycles/s",
       "guest alloc + host attach + both detach (64 KiB queues), told by datagram and doorbell",
       "ours (qpair_alloc/detach)", "memfd_handshake",
       "baseline: memfd passed over a socket", 0.25,
       [&] { return setups->run_trial(setup_params); },
       [&] { return bench::run_memfd_handshake_trial(setup_params); }, {}, {}},
      {"vsock_stream_64KiB", "bytes/s",
       "guest -> host vSockets stream, blocking, 64 KiB writes, every byte checked",
       "ours (vSockets stream)", "unix_socketpair", "baseline: unix socketpair", 1.5,
       [&] { return vsock->run_stream_trial(vsock_stream_params); },
       [&] { return bench::run_socket_trial(vsock_stream_params); }, {}, {}, true},
      {"vsock_preload_stream_64KiB", "bytes/s",
       "an unmodified C program's read() and write() over AF_VSOCK, under vmci-vsock-run at "
       "both ends (guest -> host), 64 KiB writes, every byte checked",
       "ours (vmci-vsock-run)", "unix_stream_socket",
       "baseline: the same program over a unix socket", 0.8,
       [&] { return preload->run_trial(vsock_stream_params); },
       [&] { return preload->run_unix_trial(vsock_stream_params); }, {}, {}, true},
      {"vsock_connect_rate", "cycles/s",
       "guest connect + host accept + both close (the guest once it reads the end of the "
       "stream)",
       "ours (vSockets)", "unix_stream_connect", "baseline: unix socket on a path", 0.25,
       [&] { return vsock->run_connect_trial(connect_window); },
       [&] { return bench::run_unix_connect_trial(connect_window); }, {}, {}},
  };
  std::vector<bench::IdleFigure> idle_figures = {
      {"vsock_idle_64", "64 established vSockets connections from one guest process",
       "ours (vSockets connections)", "unix_socketpairs", "baseline: 64 unix socketpairs",
       {64, 0.2, o.quick ? 0.3 : 5.0},
       [&](const bench::IdleParams& p) { return vsock->run_idle_trial(p); },
       [&](const bench::IdleParams& p) {
         return bench::run_unix_idle_trial(p, vsock->host_threads());
       },
       {}, {}},
  };
  bench::ScaleFigure scale;
  scale.params.guests = o.quick ? 16 : 64;
  scale.params.warmup_s = o.quick ? 0.1 : 0.2;
  scale.params.window_s = o.quick ? 0.3 : 1.0;
  scale.params.idle_s = o.quick ? 0.3 : 1.0;
  const bool scaling = o.only.empty() || o.only == kScaleName;
  bench::ManyGuestsFigure many_guests;
  many_guests.requested = o.guests > 0 ? o.guests : o.quick ? 160 : 1024;
  many_guests.params.guests = bench::guests_that_fit(many_guests.requested, &many_guests.limit);
  many_guests.params.warmup_s = o.quick ? 0.2 : 0.5;
  many_guests.params.window_s = o.quick ? 0.3 : 1.0;
  many_guests.params.idle_s = o.quick ? 0.3 : 1.0;
  const bool many = o.only.empty() || o.only == kManyGuestsName;
  if (many && many_guests.params.guests < 1) {
    throw std::runtime_error(std::string(kManyGuestsName) + ": no guest fits: " +
                             many_guests.limit);
  }
  if (!o.only.empty()) {
    std::erase_if(figures, [&](const Figure& f) { return f.name != o.only; });
    std::erase_if(rtt_figures, [&](const RttFigure& f) { return f.name != o.only; });
    std::erase_if(rate_figures, [&](const bench::RateFigure& f) { return f.name != o.only; });
    std::erase_if(idle_figures, [&](const bench::IdleFigure& f) { return f.name != o.only; });
    if (figures.empty() && rtt_figures.empty() && rate_figures.empty() && idle_figures.empty() &&
        o.only != kAwakeName && !scaling && !many) {
      throw std::runtime_error("no figure named " + o.only);
    }
  }

  // The consumer (host) side, hostpeer's I/O thread included, lives on one CPU.
  bench::pin_to_cpu(bench::kConsumerCpu);
  std::optional<bench::QpairBench> qpair;
  if (!figures.empty()) qpair.emplace();
  for (const bench::RateFigure& f : rate_figures) {
    if (f.name.starts_with("datagram_rate_64B") && !datagrams) datagrams.emplace();
    if (f.name == "qp_setup_rate") setups.emplace();
    if (f.name == "vsock_preload_stream_64KiB") preload.emplace();
  }
  const bool vsocks = !idle_figures.empty() ||
                      std::ranges::any_of(rate_figures, [](const bench::RateFigure& f) {
                        return f.name.starts_with("vsock_") &&
                               f.name != "vsock_preload_stream_64KiB";
                      }) ||
                      std::ranges::any_of(rtt_figures, [](const RttFigure& f) {
                        return f.ours == kVsockRr;
                      });
  if (vsocks) vsock.emplace();
  const std::function<Measurement(const StreamParams&)> trial[kTransports] = {
      [&](const StreamParams& p) { return qpair->run_trial(p); },
      bench::run_ring_trial,
      bench::run_socket_trial,
  };
  const bool awake = o.only.empty() || o.only == kAwakeName;
  std::optional<bench::DoorbellBench> doorbells;
  if (awake || std::ranges::any_of(rtt_figures, [](const RttFigure& f) {
        return is_doorbell(f.ours);
      })) {
    doorbells.emplace();
  }
  const std::function<bench::RttResult(const bench::RttParams&)> rtt_trial[kRttTransports] = {
      [&](const bench::RttParams& p) { return doorbells->run_embedded_trial(p); },
      [&](const bench::RttParams& p) { return doorbells->run_daemon_trial(p); },
      [&](const bench::RttParams& p) { return vsock->run_rr_trial(p, 64); },
      bench::run_futex_pingpong_trial,
      [](const bench::RttParams& p) { return bench::run_socket_pingpong_trial(p, 1); },
      [](const bench::RttParams& p) { return bench::run_socket_pingpong_trial(p, 64); },
  };
  // Each run: every selected figure's own, then the baselines they show
  // (each once).
  std::vector<RttTransport> rtt_order;
  for (const RttFigure& f : rtt_figures) rtt_order.push_back(f.ours);
  for (const RttFigure& f : rtt_figures) {
    for (RttTransport t : f.baselines) {
      if (!o.ours_only && std::ranges::find(rtt_order, t) == rtt_order.end()) {
        rtt_order.push_back(t);
      }
    }
  }
  RttResults rtt_results;
  AwakeResults awake_results;

  for (int r = 1; r <= o.runs; ++r) {
    std::fprintf(stderr, "run %d/%d\n", r, o.runs);
    for (Figure& f : figures) {
      params.chunk = f.chunk;
      for (int t = 0; t < (o.ours_only ? kOurs + 1 : kTransports); ++t) {
        f.values[t].push_back(f.value_of(trial[t](params)));
        if (o.verbose) {
          std::fprintf(stderr, "  %-20s %-16s %s\n", f.name.c_str(), kTransportName[t],
                       f.shown(f.values[t].back()).c_str());
        }
      }
    }
    for (bench::RateFigure& f : rate_figures) f.run_once(o.ours_only, o.verbose);
    for (RttTransport t : rtt_order) {
      rtt_results[t].push_back(rtt_trial[t](rtt_params));
      if (o.verbose) {
        const bench::RttResult& res = rtt_results[t].back();
        std::fprintf(stderr, "  %-20s p50 %s us, p99 %s us, context switches/rt %.2f (%s)\n",
                     kRttName[t], micros(res.p50_ns).c_str(), micros(res.p99_ns).c_str(),
                     res.switches_per_rtt, res.switches_detail.c_str());
        for (const bench::Stage& stage : res.stages) {
          std::fprintf(stderr, "    %-40s %s us\n", stage.name.c_str(),
                       micros(stage.p50_ns).c_str());
        }
      }
    }
    if (awake) run_awake_trials(*doorbells, awake_params, o.ours_only, o.verbose, awake_results);
    if (scaling) scale.run_once(o.ours_only, o.verbose);
    if (many) many_guests.run_once(o.ours_only, o.verbose);
    for (bench::IdleFigure& f : idle_figures) f.run_once(o.ours_only, o.verbose);
  }

  if (o.smoke) {
    std::printf(
        "vmci-bench --smoke: one run of each figure, to check that each runs; "
        "the figures below are not to be read\n\n");
  }
  print_report(figures, o.runs, params);
  bench::print_rate_report(rate_figures, o.runs);
  print_rtt_report(rtt_figures, rtt_results, o.runs, rtt_params, !figures.empty());
  print_awake_report(awake_results, o.runs, awake_params.rings,
                     !figures.empty() || !rtt_figures.empty());
  bench::print_scale_report(scale);
  bench::print_many_guests_report(many_guests);
  bench::print_idle_report(idle_figures);
  if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << comparisons(figures, rate_figures, scale, many_guests, idle_figures, rtt_figures, rtt_results,
                       awake_results, awake_params.rings)
               .dump(2)
        << "\n";
    if (!out) {
      std::fprintf(stderr, "vmci-bench: cannot write %s\n", o.json_path.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::is_child_command(argc, argv)) return bench::child_main(argc, argv);

  Options o;
  CLI::App app{
      "vmci-bench: VMCI queue-pair throughput beside a shared-memory ring and a "
      "socketpair; doorbell round trips beside futex and socketpair ping-pongs; doorbell "
      "rings while the owner is awake beside a raw shared-memory ring; vSockets streams, "
      "round trips, connects and idle connections beside Unix sockets"};
  app.set_version_flag("--version", "vmci-bench " VMCI_VERSION);
  app.add_flag("--quick", o.quick, "shorter windows and fewer round trips (well under a minute)");
  auto* runs = app.add_option("--runs", o.runs, "interleaved runs per figure (at least 5)")
                   ->check(CLI::Range(5, 1000))
                   ->capture_default_str();
  app.add_flag("--smoke", o.smoke,
               "--quick with one run per figure: checks that every figure runs end to end "
               "(the sanitizer builds' test); its figures are not to be read")
      ->excludes(runs);
  app.add_option("--window", o.window, "seconds measured per trial (default 0.25, --quick 0.1)")
      ->check(CLI::Range(0.01, 60.0));
  app.add_option("--rounds", o.rounds,
                 "timed round trips per round-trip trial (default 20000, --quick 2000)")
      ->check(CLI::Range(100, 10000000));
  app.add_option("--figure", o.only, "run only this figure (for profiling)");
  auto* via_thread =
      app.add_flag("--via-thread", o.via_thread,
                   "doorbell figures: a measuring thread rings each round and sleeps until the "
                   "host's callback hands it the answer (default: the callback rings the next "
                   "round itself)");
  app.add_flag("--spin", o.spin,
               "with --via-thread: the measuring thread spins on the answer count instead of "
               "sleeping on a condition variable")
      ->needs(via_thread);
  app.add_option("--hostpeer-cpu", o.hostpeer_cpu,
                 "doorbell_rtt_daemon: the CPU of the hostpeer process, -1 for none")
      ->check(CLI::Range(-1, 1023))
      ->capture_default_str();
  app.add_flag("--ours-only", o.ours_only,
               "run no baseline (to count system calls of ours with perf): no ratios, no JSON "
               "comparisons");
  app.add_option("--guests", o.guests,
                 "scale_1024_guests: guest processes (default 1024, --quick 160; fewer if this "
                 "process's limits allow fewer, named in the report)")
      ->check(CLI::Range(1, bench::kMaxManyGuests));
  app.add_flag("--verbose", o.verbose, "print every trial's result to stderr");
  app.add_option("--json", o.json_path, "also write the comparisons as JSON to FILE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }
  if (o.smoke) {
    o.quick = true;
    o.runs = 1;
  }

  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmci-bench: FAILED: %s\n", e.what());
    return 1;
  }
}
