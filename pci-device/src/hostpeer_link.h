// hostpeer_link.h: the device's context, as one guest connection of
// hostpeer (the ordinary control protocol, through guest-driver's
// connection): the datagrams the guest sends, hypercalls included, go to
// hostpeer; what hostpeer delivers goes to the device; doorbells hostpeer
// rings on the connection's notify memory are copied into the guest's
// notify bitmap by a thread of this object.
//
// The device is a guest like any other to hostpeer: it never includes
// hostpeer, and nothing it does needs more trust than a guest has.
//
// Queue pairs live in the guest's own pages: the connection says
// kFeatureGuestMemory (and kFeatureNoRingChannels: every ring of the
// guest's doorbells must reach its bitmap through this object), and before
// a QUEUEPAIR_ALLOC hypercall goes to hostpeer the link sends the guest's RAM
// map (kGuestMemory: QEMU's memfds) if it changed since it was last sent, or
// if the driver's page-number width did (VMCI_CAPS_PPN64).
//
//   HostpeerLink link(options, log);          // connects, or throws
//   VmciDevice device(memory, link, line, log);
//   link.start(device, memory);               // deliveries and doorbells flow
//   ...
//   link.stop();                              // before device goes
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vmci_device.h"
#include "vmci/guest/driver.h"

namespace vmci::guest::internal {
class Connection;
}

namespace vmci::pcidev {

class HostpeerLink : public Hypervisor {
 public:
  // Connects as a guest (options.role is set to kGuest); throws
  // std::runtime_error with hostpeer's reason if it cannot.
  HostpeerLink(guest::ConnectOptions options, std::shared_ptr<spdlog::logger> log);
  ~HostpeerLink() override;
  HostpeerLink(const HostpeerLink&) = delete;
  HostpeerLink& operator=(const HostpeerLink&) = delete;

  vmci_id context_id() const;

  // From now on deliveries and rung doorbells go to `device`, and queue
  // pairs are made in `memory` (both must outlive stop()). Deliveries that
  // came before wait until then.
  void start(VmciDevice& device, GuestMemory& memory);
  // Ends the connection and the notify thread; deliveries stop.
  void stop();
  bool alive() const;

  int64_t send(std::span<const uint8_t> datagram) override;
  void taken(uint32_t delivery_id) override;

 private:
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram);
  void notify_loop();
  // Sends the RAM map unless hostpeer has this one with this width; a
  // failure is hostpeer's answer (the alloc that follows then fails too).
  int64_t send_memory_map();

  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<guest::internal::Connection> connection_;
  std::mutex mutex_;                // guards device_ and early_
  VmciDevice* device_ = nullptr;
  GuestMemory* memory_ = nullptr;
  std::mutex map_mutex_;                   // guards the two below
  std::optional<uint64_t> map_generation_;  // the map hostpeer has
  bool map_ppn64_ = false;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> early_;
  std::atomic<bool> stopping_{false};
  std::thread notifier_;
};

}  // namespace vmci::pcidev
