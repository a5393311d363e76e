// main.cc: vmci-bench, queue-pair throughput measured beside its baselines.
//
//   vmci-bench [--quick] [--runs N] [--window SECONDS] [--figure NAME] [--verbose]
//              [--json FILE]
//
// For each run, for each chunk size, it runs a trial of the queue pair
// (ours), the shared-memory ring (baseline A) and the socketpair
// (baseline B) one after the other, so drift hits all three alike. Then it
// prints, per figure, min / median / max of each and the ratio of medians
// against its target, and with --json writes the comparisons. The exit
// status is 0 whether or not targets are met; 1 if the benchmark itself
// failed (a process died, data did not match); 2 for a bad command line.
// (`--child ...` is the trial's producer process: see trial.h.)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "process.h"
#include "qpair_throughput.h"
#include "ring_baseline.h"
#include "socket_baseline.h"
#include "stats.h"
#include "trial.h"

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

void print_report(const std::vector<Figure>& figures, int runs, const StreamParams& p) {
  std::printf(
      "vmci-bench: guest -> host streaming, 1 MiB queues, %d runs, warm-up %.2f s, "
      "window %.2f s,\nconsumer on CPU %d, producer on CPU %d, chunks stamped and checked\n",
      runs, p.warmup_s, p.window_s, bench::kConsumerCpu, bench::kProducerCpu);
  for (const Figure& f : figures) {
    std::printf("\n%s: %s, %s chunks\n", f.name.c_str(), f.unit(), chunk_text(f.chunk).c_str());
    std::printf("  %-28s %14s %14s %14s\n", "", "min", "median", "max");
    bench::Summary s[kTransports];
    for (int t = 0; t < kTransports; ++t) {
      s[t] = bench::summarize(f.values[t]);
      std::printf("  %-28s %14s %14s %14s\n", kTransportLabel[t], f.shown(s[t].min).c_str(),
                  f.shown(s[t].median).c_str(), f.shown(s[t].max).c_str());
    }
    for (int t = kRing; t < kTransports; ++t) {
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

nlohmann::ordered_json comparisons(const std::vector<Figure>& figures) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Figure& f : figures) {
    const double ours = bench::summarize(f.values[kOurs]).median;
    for (const Target& target : f.targets) {
      const double baseline = bench::summarize(f.values[target.baseline]).median;
      const double ratio = ours / baseline;
      out.push_back({{"name", f.name},
                     {"unit", f.unit()},
                     {"ours", ours},
                     {"baseline", baseline},
                     {"baseline_name", kTransportName[target.baseline]},
                     {"ratio", ratio},
                     {"target", target.min_ratio},
                     {"met", ratio >= target.min_ratio}});
    }
  }
  return out;
}

int run(bool quick, int runs, double window, const std::string& only, bool verbose,
        const std::string& json_path) {
  StreamParams params;
  params.warmup_s = quick ? 0.03 : 0.05;
  params.window_s = window > 0 ? window : quick ? 0.1 : 0.25;

  std::vector<Figure> figures = {
      {"qp_throughput_64KiB", 65536, false, {{kRing, 0.8}, {kSocket, 1.5}}, {}},
      {"qp_throughput_4KiB", 4096, false, {{kRing, 0.7}}, {}},
      {"qp_msg_rate_64B", 64, true, {{kRing, 0.5}}, {}},
  };
  if (!only.empty()) {
    std::erase_if(figures, [&](const Figure& f) { return f.name != only; });
    if (figures.empty()) throw std::runtime_error("no figure named " + only);
  }

  // The consumer side, hostpeer's I/O thread included, lives on one CPU.
  bench::pin_to_cpu(bench::kConsumerCpu);
  bench::QpairBench qpair;
  const std::function<Measurement(const StreamParams&)> trial[kTransports] = {
      [&](const StreamParams& p) { return qpair.run_trial(p); },
      bench::run_ring_trial,
      bench::run_socket_trial,
  };

  for (int r = 1; r <= runs; ++r) {
    std::fprintf(stderr, "run %d/%d\n", r, runs);
    for (Figure& f : figures) {
      params.chunk = f.chunk;
      for (int t = 0; t < kTransports; ++t) {
        f.values[t].push_back(f.value_of(trial[t](params)));
        if (verbose) {
          std::fprintf(stderr, "  %-20s %-16s %s\n", f.name.c_str(), kTransportName[t],
                       f.shown(f.values[t].back()).c_str());
        }
      }
    }
  }

  print_report(figures, runs, params);
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << comparisons(figures).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "vmci-bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::is_child_command(argc, argv)) return bench::child_main(argc, argv);

  bool quick = false;
  int runs = 5;
  double window = 0;  // 0: the default
  std::string only;
  bool verbose = false;
  std::string json_path;
  CLI::App app{
      "vmci-bench: VMCI queue-pair throughput beside a shared-memory ring and a "
      "socketpair"};
  app.add_flag("--quick", quick, "shorter windows (the whole run well under a minute)");
  app.add_option("--runs", runs, "interleaved runs per figure (at least 5)")
      ->check(CLI::Range(5, 1000))
      ->capture_default_str();
  app.add_option("--window", window, "seconds measured per trial (default 0.25, --quick 0.1)")
      ->check(CLI::Range(0.01, 60.0));
  app.add_option("--figure", only, "run only this figure (for profiling)");
  app.add_flag("--verbose", verbose, "print every trial's result to stderr");
  app.add_option("--json", json_path, "also write the comparisons as JSON to FILE");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int status = app.exit(e);
    return status == 0 ? 0 : 2;
  }

  try {
    return run(quick, runs, window, only, verbose, json_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmci-bench: FAILED: %s\n", e.what());
    return 1;
  }
}
