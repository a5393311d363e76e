// many_guests_figure.cc: see many_guests_figure.h.
#include "many_guests_figure.h"

#include <cstdio>

#include "idle_figure.h"
#include "stats.h"

namespace bench {
namespace {

constexpr const char* kName = "scale_1024_guests";
constexpr double kMaxSetupRatio = 4.0;  // ours' set-up time / the baseline's, at most
constexpr double kMinStormRatio = 1.0;  // ours' storm rate / the baseline's, at least
constexpr double kMaxRss = 64.0 * 1024 * 1024;
constexpr double kMiB = 1024.0 * 1024;

template <typename Field>
Summary summarize_field(const std::vector<ManyGuestsResult>& results, Field field) {
  std::vector<double> values;
  for (const ManyGuestsResult& r : results) values.push_back(static_cast<double>(r.*field));
  return summarize(values);
}

void print_row(const char* label, const Summary& s, double unit, const char* unit_name) {
  std::printf("  %-40s %10.3f %10.3f %10.3f %s\n", label, s.min / unit, s.median / unit,
              s.max / unit, unit_name);
}

std::string name(const char* suffix) { return std::string(kName) + suffix; }

}  // namespace

void ManyGuestsFigure::run_once(bool ours_only, bool verbose) {
  ours.push_back(run_many_guests_trial(params));
  if (!ours_only) sockets.push_back(run_many_sockets_trial(params));
  if (!verbose) return;
  const ManyGuestsResult& o = ours.back();
  std::fprintf(stderr,
               "  %s ours: set-up %.3f s (pairs %.3f s before), storm %.0f dg/s, hostpeer RSS "
               "%.1f MiB, %llu fds, idle %.6f s CPU, %llu wake-ups\n",
               kName, o.setup_s, o.prepare_s, o.storm_per_s, o.hostpeer_rss / kMiB,
               static_cast<unsigned long long>(o.hostpeer_fds), o.idle_cpu_s,
               static_cast<unsigned long long>(o.idle_wakeups));
  if (!ours_only) {
    std::fprintf(stderr, "  %s unix_seqpacket_epoll: set-up %.3f s, storm %.0f dg/s\n", kName,
                 sockets.back().setup_s, sockets.back().storm_per_s);
  }
}

void print_many_guests_report(const ManyGuestsFigure& f) {
  if (f.ours.empty()) return;
  const ManyGuestsParams& p = f.params;
  std::printf(
      "\n%s: %d guest processes, each one queue pair (%llu KiB queues) and one doorbell,\n"
      "  against one host connection (hostpeer a daemon); storm of %zu-byte datagrams; %zu runs\n",
      kName, p.guests, static_cast<unsigned long long>(p.queue_size / 1024), p.payload,
      f.ours.size());
  if (!f.limit.empty()) {
    std::printf("  %d guests asked for, %d fit: the limit is %s\n", f.requested, p.guests,
                f.limit.c_str());
  }
  std::printf("  %-40s %10s %10s %10s\n", "", "min", "median", "max");
  const Summary setup = summarize_field(f.ours, &ManyGuestsResult::setup_s);
  const Summary storm = summarize_field(f.ours, &ManyGuestsResult::storm_per_s);
  print_row("ours: host allocates the pairs (before)", summarize_field(f.ours, &ManyGuestsResult::prepare_s), 1, "s");
  print_row("ours: all connect + pair + doorbell", setup, 1, "s");
  if (!f.sockets.empty()) {
    print_row("baseline: memfds + eventfds (before)",
              summarize_field(f.sockets, &ManyGuestsResult::prepare_s), 1, "s");
    const Summary base = summarize_field(f.sockets, &ManyGuestsResult::setup_s);
    print_row("baseline: all connect + memfd + eventfd", base, 1, "s");
    const double ratio = setup.median / base.median;
    std::printf("  set-up ours/unix_seqpacket_epoll %16.3f   target <= %.2f  %s\n", ratio,
                kMaxSetupRatio, ratio <= kMaxSetupRatio ? "MET" : "NOT MET");
  }
  print_row("ours: storm, all guests sending", storm, 1e6, "M dg/s");
  if (!f.sockets.empty()) {
    const Summary base = summarize_field(f.sockets, &ManyGuestsResult::storm_per_s);
    print_row("baseline: seqpacket + epoll", base, 1e6, "M dg/s");
    const double ratio = storm.median / base.median;
    std::printf("  storm ours/unix_seqpacket_epoll %17.3f   target >= %.2f  %s\n", ratio,
                kMinStormRatio, ratio >= kMinStormRatio ? "MET" : "NOT MET");
  }
  const ManyGuestsResult& last = f.ours.back();
  std::printf(
      "  storm paths (last run): %llu of %llu datagrams routed by hostpeer, the rest in lanes;\n"
      "  ring channels %llu; guests whose second ring to the host went through hostpeer: %llu\n"
      "  (a connection owns at most 120 channels; rings and datagrams of the others go\n"
      "  through hostpeer, counted and logged once)\n",
      static_cast<unsigned long long>(last.storm_routed_by_hostpeer),
      static_cast<unsigned long long>(last.storm_datagrams),
      static_cast<unsigned long long>(last.ring_channels),
      static_cast<unsigned long long>(last.guests_ringing_through_hostpeer));
  const Summary rss = summarize_field(f.ours, &ManyGuestsResult::hostpeer_rss);
  print_row("hostpeer VmRSS (all of it beyond queues)", rss, kMiB, "MiB");
  print_row("  of which RssShmem (notify, channels)",
            summarize_field(f.ours, &ManyGuestsResult::hostpeer_shmem), kMiB, "MiB");
  print_row("queue memory of the pairs (not mapped)",
            summarize_field(f.ours, &ManyGuestsResult::queue_memory), kMiB, "MiB");
  std::printf("  hostpeer RSS beyond queue memory: target < 64 MiB  %s\n",
              rss.max < kMaxRss ? "MET" : "NOT MET");
  const Summary fds = summarize_field(f.ours, &ManyGuestsResult::hostpeer_fds);
  const Summary limit = summarize_field(f.ours, &ManyGuestsResult::hostpeer_fd_limit);
  print_row("hostpeer descriptors", fds, 1, "");
  print_row("host process descriptors (ours)", summarize_field(f.ours, &ManyGuestsResult::host_fds), 1, "");
  if (!f.sockets.empty()) {
    print_row("baseline server process descriptors",
              summarize_field(f.sockets, &ManyGuestsResult::host_fds), 1, "");
  }
  std::printf("  hostpeer: %.2f descriptors per guest, RLIMIT_NOFILE %.0f (about %.0f guests):  %s\n",
              fds.max / p.guests, limit.min, limit.min * p.guests / fds.max,
              fds.max < limit.min ? "within" : "NOT within");
  const Summary cpu = summarize_field(f.ours, &ManyGuestsResult::idle_cpu_s);
  const Summary wakeups = summarize_field(f.ours, &ManyGuestsResult::idle_wakeups);
  std::printf(
      "  hostpeer + host endpoint while all idle (%.1f s): CPU %.6f s max, wake-ups %.0f max: "
      "target 0  %s\n",
      p.idle_s, cpu.max, wakeups.max, cpu.max == 0 && wakeups.max == 0 ? "MET" : "NOT MET");
  std::fflush(stdout);
}

void add_many_guests_comparisons(const ManyGuestsFigure& f, nlohmann::ordered_json& out) {
  if (f.ours.empty()) return;
  const ManyGuestsParams& p = f.params;
  const ManyGuestsResult& last = f.ours.back();
  if (!f.sockets.empty()) {
    const Summary ours = summarize_field(f.ours, &ManyGuestsResult::setup_s);
    const Summary base = summarize_field(f.sockets, &ManyGuestsResult::setup_s);
    const double ratio = ours.median / base.median;
    out.push_back({{"name", name("_setup")},
                   {"unit", "s"},
                   {"statistic", "from the go to the last guest connected with its pair and doorbell"},
                   {"ours", ours.median},
                   {"baseline", base.median},
                   {"baseline_name", "unix_seqpacket_epoll"},
                   {"ratio", ratio},
                   {"target", kMaxSetupRatio},
                   {"better", "lower"},
                   {"met", ratio <= kMaxSetupRatio},
                   {"ours_min", ours.min},
                   {"ours_max", ours.max},
                   {"baseline_min", base.min},
                   {"baseline_max", base.max},
                   {"guests", p.guests},
                   {"guests_requested", f.requested},
                   {"guests_limit", f.limit.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(f.limit)},
                   {"ours_prepare_s", summarize_field(f.ours, &ManyGuestsResult::prepare_s).median}});
    const Summary storm = summarize_field(f.ours, &ManyGuestsResult::storm_per_s);
    const Summary storm_base = summarize_field(f.sockets, &ManyGuestsResult::storm_per_s);
    const double storm_ratio = storm.median / storm_base.median;
    out.push_back({{"name", name("_storm")},
                   {"unit", "datagrams/s"},
                   {"ours", storm.median},
                   {"baseline", storm_base.median},
                   {"baseline_name", "unix_seqpacket_epoll"},
                   {"ratio", storm_ratio},
                   {"target", kMinStormRatio},
                   {"met", storm_ratio >= kMinStormRatio},
                   {"ours_min", storm.min},
                   {"ours_max", storm.max},
                   {"baseline_min", storm_base.min},
                   {"baseline_max", storm_base.max},
                   {"guests", p.guests},
                   {"payload", p.payload},
                   {"last_run_routed_by_hostpeer", last.storm_routed_by_hostpeer},
                   {"last_run_datagrams", last.storm_datagrams},
                   {"ring_channels", last.ring_channels},
                   {"guests_ringing_through_hostpeer", last.guests_ringing_through_hostpeer}});
  }
  const Summary rss = summarize_field(f.ours, &ManyGuestsResult::hostpeer_rss);
  out.push_back({{"name", name("_hostpeer_rss")},
                 {"unit", "bytes"},
                 {"statistic",
                  "hostpeer's VmRSS after the set-up and after the storm, max over runs (it maps "
                  "no queue memory, so all of it is beyond the queues)"},
                 {"ours", rss.max},
                 {"baseline", nullptr},
                 {"baseline_name", nullptr},
                 {"ratio", nullptr},
                 {"target", kMaxRss},
                 {"target_kind", "absolute: met is ours < target"},
                 {"better", "lower"},
                 {"met", rss.max < kMaxRss},
                 {"hostpeer_shmem_max", summarize_field(f.ours, &ManyGuestsResult::hostpeer_shmem).max},
                 {"queue_memory", summarize_field(f.ours, &ManyGuestsResult::queue_memory).median}});
  const Summary fds = summarize_field(f.ours, &ManyGuestsResult::hostpeer_fds);
  const double limit = summarize_field(f.ours, &ManyGuestsResult::hostpeer_fd_limit).min;
  nlohmann::ordered_json descriptors = {
      {"name", name("_descriptors")},
      {"unit", "descriptors"},
      {"statistic", "entries of hostpeer's /proc/PID/fd after the set-up, max over runs"},
      {"ours", fds.max},
      {"baseline", f.sockets.empty() ? nlohmann::ordered_json(nullptr)
                                     : nlohmann::ordered_json(summarize_field(
                                           f.sockets, &ManyGuestsResult::host_fds).max)},
      {"baseline_name", f.sockets.empty() ? nlohmann::ordered_json(nullptr)
                                          : nlohmann::ordered_json("unix_seqpacket_epoll_server")},
      {"ratio", nullptr},
      {"target", limit},
      {"target_kind", "absolute: met is ours < hostpeer's soft RLIMIT_NOFILE"},
      {"better", "lower"},
      {"met", fds.max < limit},
      {"per_guest", fds.max / p.guests},
      {"host_process_descriptors", summarize_field(f.ours, &ManyGuestsResult::host_fds).max}};
  out.push_back(descriptors);
  const ThreadsCost idle{summarize_field(f.ours, &ManyGuestsResult::idle_cpu_s).max,
                         static_cast<uint64_t>(
                             summarize_field(f.ours, &ManyGuestsResult::idle_wakeups).max)};
  out.push_back(idle_comparison(
      name("_idle"),
      "CPU time over the idle window of hostpeer (every thread) and the host endpoint's threads, "
      "every guest connected; max over runs",
      p.idle_s, idle, std::nullopt, ""));
}

}  // namespace bench
