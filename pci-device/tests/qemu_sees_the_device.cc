// qemu_sees_the_device.cc: the PCI function behind the real QEMU.
//
// Starts Debian's qemu-system-x86_64 (TCG, no disk: SeaBIOS enumerates PCI
// and assigns BARs, then finds nothing to boot) with
// `-device x-pci-proxy-dev,fd=N`, one end of a socketpair as N and the
// other served here by ProxyLink + ProxyDevice with an echoing register
// model. Checks, through QEMU's HMP monitor, once SeaBIOS has said "No
// bootable device" on its debug console (until then it drives the same
// 0xcf8 latch):
//   - SeaBIOS assigned both BARs and enabled decoding; `info pci` shows
//     them where this process thinks they are;
//   - config space round-trips through the guest's own mechanism (ports
//     0xcf8/0xcfc): vendor/device read, interrupt line written and read;
//   - a BAR0 port write and read reach the model (BAR1's window too);
//   - SYNC_SYSMEM delivered guest RAM as a memfd: bytes written here at a
//     guest address are what QEMU shows at that address.
// Exit status: 0 pass, 1 fail, 77 skip (no qemu-system-x86_64).
//
//   pci_device_qemu_probe            # as CTest runs it
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "guest_memory.h"
#include "pci_function.h"
#include "proxy_device.h"
#include "proxy_link.h"

using namespace vmci::pcidev;
using namespace std::chrono_literals;

namespace {

// Every (bar, offset) remembers what was last written there.
class EchoRegisters : public DeviceRegisters {
 public:
  uint64_t read(int bar, uint64_t offset, unsigned) override {
    std::lock_guard lock(mutex_);
    ++reads_[bar];
    return values_[{bar, offset}];
  }
  void write(int bar, uint64_t offset, uint64_t value, unsigned) override {
    std::lock_guard lock(mutex_);
    ++writes_;
    values_[{bar, offset}] = value;
  }
  void reset() override {
    std::lock_guard lock(mutex_);
    ++resets_;
    values_.clear();
  }
  int reads(int bar) {
    std::lock_guard lock(mutex_);
    return reads_[bar];
  }
  int resets() {
    std::lock_guard lock(mutex_);
    return resets_;
  }

 private:
  std::mutex mutex_;
  std::map<std::pair<int, uint64_t>, uint64_t> values_;
  int reads_[2] = {0, 0};
  int writes_ = 0, resets_ = 0;
};

std::string find_in_path(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

class Monitor {
 public:
  bool connect(const std::string& path) {
    for (int i = 0; i < 200; ++i) {
      fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
      if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        return !until_prompt().empty();
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  // Runs one HMP command; returns what it printed (with the echo).
  std::string command(const std::string& line) {
    std::string text = line + "\n";
    if (::write(fd_.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) return {};
    return until_prompt();
  }

 private:
  std::string until_prompt() {
    std::string out;
    char buffer[4096];
    while (out.find("(qemu) ") == std::string::npos) {
      ssize_t n = ::read(fd_.get(), buffer, sizeof(buffer));
      if (n <= 0) return out;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  UniqueFd fd_;
};

// The value in "portl[0x0cfc] = 0x074015ad" (HMP `i /w`: w is 4 bytes).
uint64_t port_value(const std::string& out) {
  size_t at = out.find("] = 0x");
  return at == std::string::npos ? UINT64_MAX : std::strtoull(out.c_str() + at + 4, nullptr, 16);
}

int failures = 0;
void check(bool ok, const std::string& what, const std::string& detail = {}) {
  std::fprintf(stderr, "%s: %s%s%s\n", ok ? "ok" : "FAIL", what.c_str(), detail.empty() ? "" : "\n",
               detail.c_str());
  if (!ok) ++failures;
}

std::string hex(uint64_t v, int width) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%0*llx", width, static_cast<unsigned long long>(v));
  return text;
}

}  // namespace

int main() {
  std::string qemu = find_in_path("qemu-system-x86_64");
  if (qemu.empty()) {
    std::fprintf(stderr, "skip: qemu-system-x86_64 not installed (Debian: qemu-system-x86)\n");
    return 77;
  }
  auto log = std::make_shared<spdlog::logger>("pci", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_level(spdlog::level::info);

  char dir_template[] = "/tmp/vmci-pci-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return 1;
  std::string dir = dir_template;
  std::string monitor_path = dir + "/monitor";
  // SeaBIOS's own log (QEMU's debug console, port 0x402).
  std::string firmware_log = dir + "/seabios.log";

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  UniqueFd ours(pair[0]), theirs(pair[1]);

  // Fork before any thread exists.
  pid_t child = ::fork();
  if (child == 0) {
    ::dup2(theirs.get(), 3);  // dup2 clears close-on-exec
    std::vector<std::string> args = {qemu,
                                     "-M",
                                     "pc,memory-backend=mem",
                                     "-object",
                                     "memory-backend-memfd,id=mem,size=256M,share=on",
                                     "-m",
                                     "256M",
                                     "-accel",
                                     "tcg",
                                     "-smp",
                                     "1",
                                     "-nodefaults",
                                     "-no-user-config",
                                     "-display",
                                     "none",
                                     "-serial",
                                     "none",
                                     "-monitor",
                                     "unix:" + monitor_path + ",server=on,wait=off",
                                     "-chardev",
                                     "file,id=firmware,path=" + firmware_log,
                                     "-device",
                                     "isa-debugcon,iobase=0x402,chardev=firmware",
                                     "-device",
                                     "x-pci-proxy-dev,id=vmci,fd=3"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(qemu.c_str(), argv.data());
    std::perror("execv");
    ::_exit(127);
  }
  theirs.reset();

  EchoRegisters registers;
  GuestMemory memory;
  IrqfdInterruptSink irq(log);
  PciFunction pci(registers, irq, log);
  ProxyDevice device(pci, memory, irq, log);
  ProxyLink link(std::move(ours), log);
  LinkStatus link_end;
  std::thread server([&] { link_end = link.serve(device); });

  // SeaBIOS assigns the BARs and turns decoding on.
  auto deadline = std::chrono::steady_clock::now() + 45s;
  while (std::chrono::steady_clock::now() < deadline &&
         !(pci.bar_address(0) != 0 && pci.bar_address(1) != 0 && pci.io_decoding() &&
           pci.memory_decoding())) {
    std::this_thread::sleep_for(100ms);
  }
  uint64_t bar0 = pci.bar_address(0), bar1 = pci.bar_address(1);
  check(bar0 != 0 && bar1 != 0 && pci.io_decoding() && pci.memory_decoding(),
        "SeaBIOS assigned the BARs and enabled decoding",
        "BAR0 " + hex(bar0, 4) + " BAR1 " + hex(bar1, 8));
  check(irq.has_irqfd(), "SET_IRQFD arrived with its two eventfds");
  // The checks below drive the 0xcf8 address latch from the monitor, which
  // the firmware also uses until it is done: wait until SeaBIOS has given
  // up booting (it then only idles).
  auto firmware_done = [&] {
    std::ifstream in(firmware_log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find("No bootable device") != std::string::npos;
  };
  while (std::chrono::steady_clock::now() < deadline && !firmware_done()) {
    std::this_thread::sleep_for(100ms);
  }
  check(firmware_done(), "SeaBIOS finished (\"No bootable device\" in its log)");
  check(registers.resets() >= 1, "DEVICE_RESET arrived (machine reset)");

  Monitor monitor;
  bool connected = monitor.connect(monitor_path);
  check(connected, "HMP monitor reachable");
  if (connected) {
    std::string info = monitor.command("info pci");
    check(info.find("BAR0: I/O at " + hex(bar0, 4) + " [" + hex(bar0 + kBar0Size - 1, 4) + "]") !=
                  std::string::npos &&
              info.find("BAR1: 32 bit memory at " + hex(bar1, 8) + " [" +
                        hex(bar1 + kBar1Size - 1, 8) + "]") != std::string::npos &&
              info.find("id \"vmci\"") != std::string::npos,
          "info pci shows the device's BARs where it tracked them", info);
    // `info pci` prints the proxy's own copy of config space, whose IDs
    // QEMU 7.2 never fills in (hw/remote/proxy.c, probe_pci_info sets the
    // class's IDs after the copy was made): it shows "PCI device
    // 0000:0000". What the guest reads comes from this process: below.

    // Find the device by the guest's own config mechanism (bus 0).
    int slot = -1;
    for (int d = 0; d < 32 && slot < 0; ++d) {
      uint32_t address = 0x80000000u | (static_cast<uint32_t>(d) << 11);
      monitor.command("o /w 0xcf8 " + hex(address, 8));
      if (port_value(monitor.command("i /w 0xcfc")) == 0x074015ad) slot = d;
    }
    check(slot >= 0, "config read through 0xcf8/0xcfc finds 15ad:0740",
          "slot " + std::to_string(slot));
    if (slot >= 0) {
      uint32_t line = 0x80000000u | (static_cast<uint32_t>(slot) << 11) | 0x3c;
      monitor.command("o /w 0xcf8 " + hex(line, 8));
      monitor.command("o /b 0xcfc 0x5a");
      uint64_t back = port_value(monitor.command("i /b 0xcfc"));
      check(back == 0x5a && pci.config_read(0x3c, 1) == 0x5a,
            "config write round-trips (interrupt line)", hex(back, 2));
    }

    monitor.command("o /w " + hex(bar0 + 0x10, 4) + " 0xabcd1234");
    uint64_t echoed = port_value(monitor.command("i /w " + hex(bar0 + 0x10, 4)));
    check(echoed == 0xabcd1234, "BAR0 port write and read reach the model", hex(echoed, 8));

    int before = registers.reads(1);
    std::string mmio = monitor.command("xp /wx " + hex(bar1 + kMmioRegisterOffset, 8));
    check(registers.reads(1) == before + 1 && mmio.find(": 0x00000000") != std::string::npos,
          "BAR1 register window read reaches the model", mmio);

    auto regions = memory.regions();
    std::string layout;
    for (const auto& r : regions) {
      layout += "  gpa " + hex(r.gpa, 8) + " size " + hex(r.size, 8) + " offset " +
                hex(r.file_offset, 8) + "\n";
    }
    log->info("guest memory after {} SYNC_SYSMEM:\n{}", memory.generation(), layout);
    const uint64_t probe = 0x8000000;  // 128 MiB: SeaBIOS leaves it alone
    bool wrote = memory.write(probe, "VMCIPCI!", 8);
    std::string seen = monitor.command("xp /2wx " + hex(probe, 8));
    check(wrote && seen.find("0x49434d56 0x21494350") != std::string::npos,
          "SYNC_SYSMEM mapped guest RAM (memfd): bytes written here show at the same guest address",
          layout + seen);
    auto page = memory.page_extent(probe);
    check(page.has_value(), "a guest page has an (fd, offset) extent",
          page ? "offset " + hex(page->offset, 8) : "");

    monitor.command("quit");
  }
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(child, &status, WNOHANG) == child) {
      child = -1;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  if (child > 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  link.shut_down();
  server.join();
  check(link_end.kind == LinkStatus::Kind::kClosed || link_end.ok(),
        "the link ended cleanly when QEMU quit", link_end.message);
  ::unlink(monitor_path.c_str());
  ::unlink(firmware_log.c_str());
  ::rmdir(dir.c_str());
  std::fprintf(stderr, "%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
