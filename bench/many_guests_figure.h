// many_guests_figure.h: the scale_1024_guests figures from
// run_many_guests_trial and its socket baseline (many_guests.h): the time
// for every guest to connect and set up against the baseline's (target:
// at most 4x, the inverse of qp_setup_rate's 0.25x), the datagram storm's
// aggregate rate against the baseline's (target: at least as fast, as
// datagram_rate_64B), hostpeer's RSS (target: under 64 MiB: hostpeer maps
// no queue memory, so its whole RSS is beyond it), the descriptors it
// holds (target: within its RLIMIT_NOFILE) and its and the host
// endpoint's CPU time and wake-ups while every guest idles (target: none).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "many_guests.h"

namespace bench {

struct ManyGuestsFigure {
  ManyGuestsParams params;
  int requested = 1024;  // guests asked for; params.guests is what fit
  std::string limit;     // what kept it below `requested` (empty: nothing)
  std::vector<ManyGuestsResult> ours, sockets;  // per run

  // One run: ours, then (unless ours_only) the sockets.
  void run_once(bool ours_only, bool verbose);
};

void print_many_guests_report(const ManyGuestsFigure& figure);
// Five comparisons: set-up, storm, RSS, descriptors, idle.
void add_many_guests_comparisons(const ManyGuestsFigure& figure, nlohmann::ordered_json& out);

}  // namespace bench
