// scale_figure.cc: see scale_figure.h.
#include "scale_figure.h"

#include <cstdio>

#include "idle_figure.h"
#include "stats.h"

namespace bench {
namespace {

constexpr double kMaxRssBeyondQueues = 64.0 * 1024 * 1024;
constexpr double kMiB = 1024.0 * 1024;
constexpr double kGiB = kMiB * 1024;

template <typename Field>
Summary summarize_field(const std::vector<ScaleResult>& results, Field field) {
  std::vector<double> values;
  for (const ScaleResult& r : results) values.push_back(static_cast<double>(r.*field));
  return summarize(values);
}

void print_row(const char* label, const Summary& s, double unit, const char* unit_name) {
  std::printf("  %-34s %10.3f %10.3f %10.3f %s\n", label, s.min / unit, s.median / unit,
              s.max / unit, unit_name);
}

}  // namespace

void ScaleFigure::run_once(bool ours_only, bool verbose) {
  ours.push_back(run_scale_trial(params));
  if (!ours_only) sockets.push_back(run_scale_socket_trial(params));
  if (!verbose) return;
  const ScaleResult& o = ours.back();
  std::fprintf(stderr,
               "  scale_64_guests      ours                   %.3f GiB/s, fairness %.2f, hostpeer "
               "RSS %.1f MiB (%.1f beyond queues), idle %.2f s CPU, %llu wake-ups\n",
               o.bytes_per_s / kGiB, o.min_stream_share, o.hostpeer_rss_bytes / kMiB,
               o.hostpeer_rss_beyond_queue_memory / kMiB, o.hostpeer_idle_cpu_s,
               static_cast<unsigned long long>(o.hostpeer_idle_wakeups));
  if (!ours_only) {
    std::fprintf(stderr, "  scale_64_guests      unix_sockets_epoll     %.3f GiB/s, fairness %.2f\n",
                 sockets.back().bytes_per_s / kGiB, sockets.back().min_stream_share);
  }
}

void print_scale_report(const ScaleFigure& f) {
  if (f.ours.empty()) return;
  const ScaleParams& p = f.params;
  std::printf(
      "\nscale_64_guests: %d guest processes x %d streams (%d doorbells each), %zu KiB chunks,\n"
      "  %llu KiB queues, hostpeer a daemon, one host connection consuming all; %zu runs\n",
      p.guests, p.pairs_per_guest, p.doorbells_per_guest, p.chunk / 1024,
      static_cast<unsigned long long>(p.queue_size / 1024), f.ours.size());
  std::printf("  %-34s %10s %10s %10s\n", "", "min", "median", "max");
  const Summary ours = summarize_field(f.ours, &ScaleResult::bytes_per_s);
  print_row("ours (queue pairs): aggregate", ours, kGiB, "GiB/s");
  print_row("ours: slowest stream / mean", summarize_field(f.ours, &ScaleResult::min_stream_share),
            1, "");
  if (!f.sockets.empty()) {
    const Summary sockets = summarize_field(f.sockets, &ScaleResult::bytes_per_s);
    print_row("baseline: unix sockets + epoll", sockets, kGiB, "GiB/s");
    print_row("baseline: slowest stream / mean",
              summarize_field(f.sockets, &ScaleResult::min_stream_share), 1, "");
    const double ratio = ours.median / sockets.median;
    std::printf("  ours/unix_sockets_epoll %21.3f   target >= 1.00  %s\n", ratio,
                ratio >= 1.0 ? "MET" : "NOT MET");
  }
  const Summary beyond = summarize_field(f.ours, &ScaleResult::hostpeer_rss_beyond_queue_memory);
  print_row("hostpeer RSS", summarize_field(f.ours, &ScaleResult::hostpeer_rss_bytes), kMiB, "MiB");
  print_row("  of which shared memory", summarize_field(f.ours, &ScaleResult::hostpeer_shmem_bytes),
            kMiB, "MiB");
  print_row("  beyond it (anon + file)", beyond, kMiB, "MiB");
  print_row("queue memory of the pairs", summarize_field(f.ours, &ScaleResult::queue_memory_bytes),
            kMiB, "MiB");
  std::printf("  hostpeer RSS beyond queue memory: target < 64 MiB  %s\n",
              beyond.max < kMaxRssBeyondQueues ? "MET" : "NOT MET");
  const Summary cpu = summarize_field(f.ours, &ScaleResult::hostpeer_idle_cpu_s);
  const Summary wakeups = summarize_field(f.ours, &ScaleResult::hostpeer_idle_wakeups);
  std::printf("  hostpeer while all idle (%.1f s): CPU %.6f s max, wake-ups %.0f max: target 0  %s\n",
              p.idle_s, cpu.max, wakeups.max, cpu.max == 0 && wakeups.max == 0 ? "MET" : "NOT MET");
  std::fflush(stdout);
}

void add_scale_comparisons(const ScaleFigure& f, nlohmann::ordered_json& out) {
  if (f.ours.empty()) return;
  const Summary ours = summarize_field(f.ours, &ScaleResult::bytes_per_s);
  if (!f.sockets.empty()) {
    const Summary sockets = summarize_field(f.sockets, &ScaleResult::bytes_per_s);
    const double ratio = ours.median / sockets.median;
    out.push_back({{"name", "scale_64_guests"},
                   {"unit", "bytes/s"},
                   {"ours", ours.median},
                   {"baseline", sockets.median},
                   {"baseline_name", "unix_sockets_epoll"},
                   {"ratio", ratio},
                   {"target", 1.0},
                   {"met", ratio >= 1.0},
                   {"ours_min", ours.min},
                   {"ours_max", ours.max},
                   {"baseline_min", sockets.min},
                   {"baseline_max", sockets.max},
                   {"streams", f.ours.front().streams},
                   {"ours_min_stream_share",
                    summarize_field(f.ours, &ScaleResult::min_stream_share).median}});
  }
  const Summary beyond = summarize_field(f.ours, &ScaleResult::hostpeer_rss_beyond_queue_memory);
  out.push_back({{"name", "scale_64_guests_hostpeer_rss"},
                 {"unit", "bytes"},
                 {"statistic", "hostpeer's RssAnon + RssFile while all stream; max over runs"},
                 {"ours", beyond.max},
                 {"baseline", nullptr},
                 {"baseline_name", nullptr},
                 {"ratio", nullptr},
                 {"target", kMaxRssBeyondQueues},
                 {"target_kind", "absolute: met is ours < target"},
                 {"better", "lower"},
                 {"met", beyond.max < kMaxRssBeyondQueues},
                 {"hostpeer_rss_median", summarize_field(f.ours, &ScaleResult::hostpeer_rss_bytes).median},
                 {"queue_memory", summarize_field(f.ours, &ScaleResult::queue_memory_bytes).median}});
  const ThreadsCost idle{summarize_field(f.ours, &ScaleResult::hostpeer_idle_cpu_s).max,
                         static_cast<uint64_t>(
                             summarize_field(f.ours, &ScaleResult::hostpeer_idle_wakeups).max)};
  out.push_back(idle_comparison(
      "scale_64_guests_idle",
      "hostpeer's CPU time over the idle window, every guest connected; max over runs",
      f.params.idle_s, idle, std::nullopt, ""));
}

}  // namespace bench
