#include "metrics/process_figures.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace vmci::host {
namespace {

bool read_file(const char* path, std::string* text, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = std::string(path) + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream out;
  out << in.rdbuf();
  *text = out.str();
  return true;
}

// Seconds since 1970 at which the machine booted (/proc/stat's btime).
std::optional<uint64_t> boot_time(std::string* error) {
  std::string text;
  if (!read_file("/proc/stat", &text, error)) return std::nullopt;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("btime ", 0) != 0) continue;
    try {
      return std::stoull(line.substr(6));
    } catch (const std::exception&) {
      break;
    }
  }
  *error = "/proc/stat: no btime line with a number";
  return std::nullopt;
}

std::optional<uint64_t> count_open_fds(std::string* error) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) {
    *error = std::string("/proc/self/fd: ") + std::strerror(errno);
    return std::nullopt;
  }
  uint64_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory's own descriptor
}

}  // namespace

std::optional<ProcessFigures> read_process_figures(std::string* error) {
  std::string stat;
  if (!read_file("/proc/self/stat", &stat, error)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted from after its last ')', where field 3 starts.
  const auto close = stat.rfind(')');
  std::vector<std::string> fields;
  if (close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 1));
    for (std::string f; rest >> f;) fields.push_back(f);
  }
  // Fields 14 utime, 15 stime, 22 starttime, 23 vsize, 24 rss (proc(5)).
  constexpr size_t kFirst = 3;
  if (fields.size() < 24 + 1 - kFirst) {
    *error = "/proc/self/stat: " + std::to_string(fields.size()) + " fields after the name";
    return std::nullopt;
  }
  auto field = [&](size_t number) { return std::stoull(fields[number - kFirst]); };
  const auto boot = boot_time(error);
  if (!boot) return std::nullopt;
  const auto fds = count_open_fds(error);
  if (!fds) return std::nullopt;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  ProcessFigures figures;
  try {
    figures.cpu_seconds = static_cast<double>(field(14) + field(15)) / ticks;
    figures.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(field(22)) / ticks;
    figures.virtual_bytes = field(23);
    figures.resident_bytes = field(24) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  } catch (const std::exception&) {
    *error = "/proc/self/stat: a field is not a number";
    return std::nullopt;
  }
  figures.open_fds = *fds;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) figures.max_fds = files.rlim_cur;
  return figures;
}

}  // namespace vmci::host
