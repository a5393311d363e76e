// proc_status.cc: see proc_status.h.
#include "proc_status.h"

#include <dirent.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace bench {
namespace {

std::string proc_path(pid_t pid, const char* what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

}  // namespace

ProcMemory read_memory(pid_t pid) {
  const std::string path = proc_path(pid, "status");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  ProcMemory m;
  std::string line;
  auto bytes = [&] { return std::stoull(line.substr(line.find(':') + 1)) * 1024; };  // "N kB"
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) m.rss = bytes();
    if (line.starts_with("RssAnon:")) m.anon = bytes();
    if (line.starts_with("RssFile:")) m.file = bytes();
    if (line.starts_with("RssShmem:")) m.shmem = bytes();
  }
  return m;
}

uint64_t open_descriptors(pid_t pid) {
  const std::string path = proc_path(pid, "fd");
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) throw std::runtime_error("cannot read " + path);
  uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) n += e->d_name[0] != '.';
  ::closedir(dir);
  return n;
}

uint64_t descriptor_limit(pid_t pid) {
  const std::string path = proc_path(pid, "limits");
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream fields(line.substr(sizeof "Max open files" - 1));
    std::string soft;
    fields >> soft;
    return soft == "unlimited" ? UINT64_MAX : std::stoull(soft);
  }
  throw std::runtime_error(path + " has no Max open files");
}

}  // namespace bench
