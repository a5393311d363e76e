// vmci-soak: a long run of everything at once against the real
// vmci-hostpeer daemon, with every byte checked and every resource
// accounted for at the end (tests/soak/soak_run.h says what it checks).
//
//   vmci-soak --seconds N [--guests 16] [--seed S] [--hostpeer PATH]
//
// Exit status 0 when every check passed, 1 otherwise (each failure is
// printed), 2 for bad arguments. The daemon is PATH, else the one built
// with this binary. `vmci-soak --guest ...` is the soak's own guest
// process (tests/soak/guest_mode.h), not for use by hand.
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "guest_mode.h"
#include "soak_run.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --seconds N [--guests G] [--seed S] [--hostpeer PATH]\n"
               "  runs vmci-hostpeer with G (default 16) guest processes for N seconds\n",
               argv0);
  return 2;
}

std::string self_path() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The daemon built with this binary: the path CMake gave, else next to it
// in the build tree.
std::string find_hostpeer(const std::string& self) {
  namespace fs = std::filesystem;
  std::vector<fs::path> candidates;
#ifdef VMCI_SOAK_HOSTPEER_BIN
  candidates.emplace_back(VMCI_SOAK_HOSTPEER_BIN);
#endif
  const fs::path dir = fs::path(self).parent_path();
  candidates.push_back(dir / "vmci-hostpeer");
  candidates.push_back(dir / ".." / "hostpeer" / "vmci-hostpeer");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c, ec)) return c.string();
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  // A guest that died leaves a pipe that must not kill the soak on write.
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  bool guest = false;
  vmci::soak::SoakOptions soak;
  vmci::soak::GuestModeOptions guest_options;
  bool seed_given = false;
  try {
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      auto value = [&]() -> const std::string& {
        if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
        return args[++i];
      };
      if (a == "--guest") {
        guest = true;
      } else if (a == "--seconds") {
        soak.seconds = std::stoi(value());
      } else if (a == "--guests") {
        soak.guests = std::stoi(value());
      } else if (a == "--seed") {
        soak.seed = guest_options.seed = std::stoull(value());
        seed_given = true;
      } else if (a == "--hostpeer") {
        soak.hostpeer = value();
      } else if (a == "--socket") {
        guest_options.socket = value();
      } else if (a == "--host-datagram") {
        guest_options.host_datagram = value();
      } else if (a == "--host-doorbell") {
        guest_options.host_doorbell = value();
      } else {
        return usage(argv[0]);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmci-soak: %s\n", e.what());
    return usage(argv[0]);
  }
  if (guest) return vmci::soak::run_guest_mode(guest_options);

  if (soak.seconds <= 0 || soak.guests <= 0 || soak.guests > 1000) return usage(argv[0]);
  if (!seed_given) soak.seed = std::random_device{}();
  soak.self = self_path();
  if (soak.hostpeer.empty()) soak.hostpeer = find_hostpeer(soak.self);
  if (soak.hostpeer.empty()) {
    std::fprintf(stderr, "vmci-soak: vmci-hostpeer not found next to %s; give --hostpeer PATH\n",
                 soak.self.c_str());
    return 2;
  }
  return vmci::soak::run_soak(soak);
}
