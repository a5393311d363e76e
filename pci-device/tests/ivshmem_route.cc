// ivshmem_route.cc: a real Linux guest gets the VMCI device's MSI-X
// interrupts under TCG through ivshmem-doorbell, and how long they take.
//
// Boots the guest (scripts/lib/guest-image-build's kernel and base
// initramfs, plus an overlay whose /vmci-vm/command runs vmci-irq-bridge)
// under qemu-system-x86_64 -accel tcg with the VMCI function behind
// x-pci-proxy-dev and an ivshmem-doorbell served by IvshmemServer here. The
// register model is a stand-in just able to get Linux's vmw_vmci through
// probe (capabilities DATAGRAM|DMA_DATAGRAM; every DMA datagram answered 1;
// every receive completes empty), so the driver requests its three MSI-X
// vectors. Then, in rounds: the guest reads marker register A (it is
// polling /proc/interrupts), this process raises VMCI vector 2 through
// PciFunction, the guest sees vmw_vmci's third line count up and reads
// marker B. Round latency is B's time minus the raise's: an upper bound
// (it includes the guest's polling loop).
// Exit status: 0 every round seen, 1 fail, 77 skip (no qemu or image).
//
//   pci_device_ivshmem_route VMLINUX INITRD [ROUNDS]
//   (INITRD: base.cpio followed by the overlay; pci-device/README.md)
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "guest_memory.h"
#include "ivshmem_interrupt_sink.h"
#include "ivshmem_server.h"
#include "pci_function.h"
#include "proxy_device.h"
#include "proxy_link.h"

using namespace vmci::pcidev;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Register offsets in the MMIO window (Linux include/linux/vmw_vmci_defs.h).
constexpr uint64_t kCaps = 0x18, kResultLow = 0x1c, kDataOutLow = 0x24, kDataOutHigh = 0x28,
                   kDataInLow = 0x2c, kDataInHigh = 0x30;
constexpr uint64_t kMarkerPolling = 0x38 + 0x10, kMarkerSeen = 0x3c + 0x10;  // unused offsets
constexpr uint32_t kCapsDatagram = 1u << 2, kCapsDmaDatagram = 1u << 5;

class ProbeOnlyRegisters : public DeviceRegisters {
 public:
  explicit ProbeOnlyRegisters(GuestMemory& memory) : memory_(memory) {}
  uint64_t read(int bar, uint64_t offset, unsigned) override {
    if (bar != 1) return 0;
    uint64_t reg = offset - kMmioRegisterOffset;
    if (reg == kCaps) return kCapsDatagram | kCapsDmaDatagram;
    if (reg == kResultLow) return 0;  // VMCI_SUCCESS: the result is in the buffer
    if (reg == kMarkerPolling || reg == kMarkerSeen) {
      std::lock_guard lock(mutex_);
      (reg == kMarkerPolling ? polling_ : seen_).push_back(Clock::now());
      cv_.notify_all();
    }
    return 0;
  }
  void write(int bar, uint64_t offset, uint64_t value, unsigned) override {
    if (bar != 1) return;
    uint64_t reg = offset - kMmioRegisterOffset;
    if (reg == kDataOutHigh) out_high_ = value;
    if (reg == kDataInHigh) in_high_ = value;
    // struct vmci_data_in_out_header: u32 busy, opcode, size, rsvd; u64 result.
    if (reg == kDataOutLow) {
      if (auto h = memory_.translate((out_high_ << 32) | value, 24)) {
        uint64_t result = 1;  // every hypercall "succeeds" (resource query: 0x01)
        std::memcpy(h->data() + 16, &result, 8);
        uint32_t busy = 0;
        std::memcpy(h->data(), &busy, 4);
      }
    }
    if (reg == kDataInLow) {
      if (auto h = memory_.translate((in_high_ << 32) | value, 24)) {
        uint32_t busy = 1;  // received: nothing
        std::memcpy(h->data(), &busy, 4);
      }
    }
  }
  void reset() override {}

  // Waits for the n-th read of a marker; its time, or nullopt at timeout.
  std::optional<Clock::time_point> wait_marker(bool seen, size_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    auto& v = seen ? seen_ : polling_;
    if (!cv_.wait_for(lock, timeout, [&] { return v.size() >= n; })) return std::nullopt;
    return v[n - 1];
  }

 private:
  GuestMemory& memory_;
  uint64_t out_high_ = 0, in_high_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Clock::time_point> polling_, seen_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s VMLINUX INITRD [ROUNDS]\n", argv[0]);
    return 77;
  }
  std::string qemu = "/usr/bin/qemu-system-x86_64";
  if (::access(qemu.c_str(), X_OK) != 0 || ::access(argv[1], R_OK) != 0 || ::access(argv[2], R_OK) != 0) {
    std::fprintf(stderr, "skip: no qemu-system-x86_64 or guest image\n");
    return 77;
  }
  int rounds = argc > 3 ? std::atoi(argv[3]) : 10;
  auto log = std::make_shared<spdlog::logger>("pci", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_level(spdlog::level::info);

  char dir_template[] = "/tmp/vmci-ivs-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return 1;
  std::string dir = dir_template;
  std::string error;
  auto ivshmem = IvshmemServer::listen(dir + "/ivshmem.sock", {kMsixVectors, 4096}, log, &error);
  if (!ivshmem) {
    log->error("{}", error);
    return 1;
  }

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  UniqueFd ours(pair[0]), theirs(pair[1]);
  std::string console = dir + "/console";
  pid_t child = ::fork();  // before any thread exists
  if (child == 0) {
    ::dup2(theirs.get(), 3);
    std::vector<std::string> args = {
        qemu, "-M", "pc,memory-backend=mem", "-object", "memory-backend-memfd,id=mem,size=256M,share=on",
        "-m", "256M", "-accel", "tcg", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
        "-no-reboot", "-serial", "file:" + console, "-kernel", argv[1], "-initrd", argv[2],
        "-append", "console=ttyS0 panic=-1",
        "-device", "x-pci-proxy-dev,id=vmci,fd=3",
        "-chardev", "socket,id=ivs,path=" + ivshmem->path(),
        "-device", "ivshmem-doorbell,chardev=ivs,vectors=" + std::to_string(kMsixVectors)};
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(qemu.c_str(), cargv.data());
    std::perror("execv");
    ::_exit(127);
  }
  theirs.reset();

  GuestMemory memory;
  ProbeOnlyRegisters registers(memory);
  IvshmemInterruptSink irq(*ivshmem, log);
  IrqfdInterruptSink irqfd(log);  // SET_IRQFD's fds: unused under TCG
  PciFunction pci(registers, irq, log);
  ProxyDevice device(pci, memory, irqfd, log);
  ProxyLink link(std::move(ours), log);
  std::thread ivshmem_thread([&] { ivshmem->serve(); });
  std::thread link_thread([&] { link.serve(device); });

  bool ok = true;
  std::vector<double> latencies_ms;
  for (int r = 1; r <= rounds; ++r) {
    auto polling = registers.wait_marker(false, r, r == 1 ? 90s : 30s);
    if (!polling) {
      log->error("round {}: the guest never started polling", r);
      ok = false;
      break;
    }
    std::this_thread::sleep_for(200ms);
    auto raised = Clock::now();
    InterruptOutcome outcome = pci.raise_interrupt(2);
    if (outcome != InterruptOutcome::kSentMsix) log->warn("round {}: raise gave {}", r, static_cast<int>(outcome));
    auto seen = registers.wait_marker(true, r, 30s);
    if (!seen) {
      log->error("round {}: the guest never saw vector 2", r);
      ok = false;
      break;
    }
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(*seen - raised).count());
  }

  int status = 0;
  for (int i = 0; i < 600 && ::waitpid(child, &status, WNOHANG) != child; ++i) std::this_thread::sleep_for(100ms);
  if (::kill(child, 0) == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  link.shut_down();
  ivshmem->stop();
  link_thread.join();
  ivshmem_thread.join();

  std::ifstream in(console);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("vmci") != std::string::npos || line.find("vmw_vmci") != std::string::npos)
      std::printf("guest| %s\n", line.c_str());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  if (!latencies_ms.empty()) {
    std::printf("rounds %zu: latency ms min %.2f median %.2f max %.2f (raise -> guest's marker read)\n",
                latencies_ms.size(), latencies_ms.front(), latencies_ms[latencies_ms.size() / 2],
                latencies_ms.back());
  }
  std::printf("sink: delivered %llu undelivered %llu unbridged %llu stale %llu\n",
              static_cast<unsigned long long>(irq.delivered()),
              static_cast<unsigned long long>(irq.undelivered()),
              static_cast<unsigned long long>(irq.unbridged()),
              static_cast<unsigned long long>(irq.stale()));
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
