// metrics_text.h: a hostpeer snapshot as Prometheus metrics, in the text
// exposition format 0.0.4 (what GET /metrics answers; docs/INTROSPECTION.md
// lists every metric).
//
// A pure function of its inputs: the snapshot (vmci/introspection.h) is
// the one source of every vmci_hostpeer_* figure, the process figures of
// every process_* one.
//
//   std::string body = vmci::host::metrics_text(peer->introspect(), read_process_figures(&error));
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "metrics/process_figures.h"
#include "vmci/introspection.h"

namespace vmci::host {

// The Content-Type of metrics_text()'s output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Every family has its HELP and TYPE lines, even with no sample; counters
// end in _total; label values are escaped (backslash, double quote,
// newline). No process_* family when `process` is nullopt.
std::string metrics_text(const Introspection& snapshot,
                         const std::optional<ProcessFigures>& process);

// A label value as the format writes it between its double quotes.
std::string escape_label_value(std::string_view value);

}  // namespace vmci::host
