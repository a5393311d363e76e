// main.cc: vmci-qemu-device, the VMCI PCI device for QEMU's proxy device.
//
//   vmci-qemu-device --fd N [--socket PATH] [--cid N] [--msix]
//                    [--ivshmem PATH] [--log-level LEVEL]
//
// QEMU is started with `-device x-pci-proxy-dev,fd=M` where M and N are
// the two ends of one Unix stream socketpair (vmci-vm makes it). The device
// connects to hostpeer as one guest context (id N if asked and free), then
// serves QEMU until QEMU goes; its context ends with it. Exit status 0 when
// QEMU went away cleanly, 1 when the link to QEMU broke, 2 for a bad command
// line, 3 when hostpeer could not be reached, 4 when the ivshmem socket
// could not be made.
//
// Interrupts: by default through the eventfds of the proxy's SET_IRQFD,
// which QEMU 7.2 never reads under TCG (the guest polls). With --ivshmem
// PATH the device is the ivshmem server at PATH (serving from before this
// returns control to QEMU's start: the socket exists once the hostpeer
// connection is up) and offers MSI-X, each vector rung through QEMU's
// `ivshmem-doorbell,chardev=...,vectors=3` once the guest ran
// vmci-irq-bridge (pci-device/README.md, "Interrupts under TCG").
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "guest_memory.h"
#include "hostpeer_link.h"
#include "ivshmem_interrupt_sink.h"
#include "ivshmem_server.h"
#include "pci_function.h"
#include "proxy_device.h"
#include "proxy_link.h"
#include "vmci_device.h"

namespace {

using namespace vmci::pcidev;

// Raises the VMCI cause's own vector when the guest enabled MSI-X (one
// vector per cause, as Linux's driver sets up), else vector 0 for all.
class PciInterruptLine : public InterruptLine {
 public:
  void attach(PciFunction* pci) { pci_ = pci; }
  void raise(uint32_t vector) override {
    if (pci_ == nullptr) return;
    pci_->raise_interrupt(pci_->msix_enabled() ? vector : 0);
  }

 private:
  PciFunction* pci_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmci-qemu-device: the VMCI PCI device (15ad:0740) behind QEMU's "
               "x-pci-proxy-dev, one guest context of hostpeer"};
  int fd = -1;
  std::string socket_path;
  std::optional<uint32_t> cid;
  std::string level = "info";
  app.set_version_flag("--version", "vmci-qemu-device " VMCI_VERSION);
  app.add_option("--fd", fd, "the descriptor of QEMU's proxy socket (x-pci-proxy-dev,fd=...)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--socket", socket_path,
                 "hostpeer's socket (default: $VMCI_HOSTPEER_SOCKET, else the default path)");
  app.add_option("--cid", cid, "the guest's context id, if free (else one is assigned)");
  bool msix = false;
  app.add_flag("--msix", msix,
               "offer MSI-X (a vector per cause, as VMware's device) rather than MSI alone; only "
               "for a route that delivers MSI-X: QEMU 7.2's proxy delivers none, and a guest "
               "polling with irqpoll polls only the shared first vector's handler");
  std::string ivshmem_path;
  app.add_option("--ivshmem", ivshmem_path,
                 "be the ivshmem server at PATH and deliver the MSI-X vectors through QEMU's "
                 "ivshmem-doorbell (implies --msix; the guest must run vmci-irq-bridge)");
  app.add_option("--log-level", level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.footer("Exit status: 0 when QEMU went away, 1 when the link to QEMU broke, 2 for a bad "
             "command line, 3 when hostpeer could not be reached, 4 when the ivshmem socket could not "
             "be made.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  auto log = spdlog::stderr_color_mt("vmci-qemu-device");
  log->set_level(spdlog::level::from_str(level));

  vmci::guest::ConnectOptions options;
  options.socket_path = socket_path;
  if (cid) options.context_id = *cid;
  std::unique_ptr<HostpeerLink> hostpeer;
  try {
    hostpeer = std::make_unique<HostpeerLink>(options, log);
  } catch (const std::exception& e) {
    log->error("cannot connect to hostpeer: {}", e.what());
    return 3;
  }

  // The ivshmem server listens before QEMU starts (vmci-vm waits for the
  // socket): QEMU's realize connects and blocks reading the greeting.
  std::unique_ptr<IvshmemServer> ivshmem;
  std::unique_ptr<IvshmemInterruptSink> ivshmem_sink;
  std::thread ivshmem_thread;
  if (!ivshmem_path.empty()) {
    std::string error;
    ivshmem = IvshmemServer::listen(ivshmem_path, {kMsixVectors, 4096}, log, &error);
    if (!ivshmem) {
      log->error("--ivshmem {}: {}", ivshmem_path, error);
      return 4;
    }
    ivshmem_sink = std::make_unique<IvshmemInterruptSink>(*ivshmem, log);
    ivshmem_thread = std::thread([&ivshmem] { ivshmem->serve(); });
  }

  GuestMemory memory;
  IrqfdInterruptSink irqfd_sink(log);  // SET_IRQFD's eventfds (never read under TCG)
  InterruptSink& sink = ivshmem_sink ? static_cast<InterruptSink&>(*ivshmem_sink) : irqfd_sink;
  PciInterruptLine line;
  VmciDevice device(memory, *hostpeer, line, log);
  PciFunction pci(device, sink, log, msix || ivshmem != nullptr);
  line.attach(&pci);
  ProxyDevice proxy(pci, memory, irqfd_sink, log);
  ProxyLink link(UniqueFd(fd), log);
  hostpeer->start(device, memory);
  const LinkStatus end = link.serve(proxy);
  hostpeer->stop();
  if (ivshmem) {
    ivshmem->stop();
    ivshmem_thread.join();
    log->info("ivshmem route: delivered {} undelivered {} unbridged {} stale {}",
              ivshmem_sink->delivered(), ivshmem_sink->undelivered(), ivshmem_sink->unbridged(),
              ivshmem_sink->stale());
  }
  if (end.kind == LinkStatus::Kind::kClosed) {
    log->info("QEMU went away; context {} ends", hostpeer->context_id());
    return 0;
  }
  log->error("the link to QEMU broke: {}", end.message);
  return 1;
}
