// hostpeer_link.cc: the device's guest connection to hostpeer (see
// hostpeer_link.h).
#include "hostpeer_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "connection.h"
#include "vmci/proto/notify_memory.h"
#include "vmci/proto/queue_pair_hypercalls.h"

namespace vmci::pcidev {
namespace {

// How long the notify thread sleeps before it looks again without news: a
// doorbell rung before the guest registered its bitmap waits at most this
// long once it has.
constexpr std::chrono::milliseconds kNotifyLook{100};

}  // namespace

HostpeerLink::HostpeerLink(guest::ConnectOptions options, std::shared_ptr<spdlog::logger> log)
    : log_(std::move(log)) {
  options.role = proto::Role::kGuest;
  guest::internal::Connection::Sink sink;
  sink.deliver = [this](uint32_t id, std::vector<uint8_t> datagram) {
    deliver(id, std::move(datagram));
  };
  sink.closed = [this](const std::string& reason) {
    if (!stopping_) log_->error("VMCI device: the connection to hostpeer ended: {}", reason);
  };
  int status = 0;
  std::string error;
  connection_ = guest::internal::Connection::open(
      options, std::move(sink), &status, &error,
      proto::kFeatureGuestMemory | proto::kFeatureNoRingChannels);
  if (!connection_) throw std::runtime_error(error);
  log_->info("VMCI device: context {} of hostpeer", connection_->context_id());
}

HostpeerLink::~HostpeerLink() { stop(); }

vmci_id HostpeerLink::context_id() const { return connection_->context_id(); }

bool HostpeerLink::alive() const { return connection_ && connection_->alive(); }

void HostpeerLink::start(VmciDevice& device, GuestMemory& memory) {
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> early;
  {
    std::lock_guard lock(mutex_);
    device_ = &device;
    memory_ = &memory;
    early.swap(early_);
  }
  for (auto& [id, datagram] : early) device.deliver(id, std::move(datagram));
  notifier_ = std::thread([this] { notify_loop(); });
}

void HostpeerLink::stop() {
  if (stopping_.exchange(true)) return;
  if (connection_) {
    proto::signal_and_wake(&connection_->notify_memory()->wake);
    connection_->abort();
  }
  if (notifier_.joinable()) notifier_.join();
  std::lock_guard lock(mutex_);
  device_ = nullptr;
}

int64_t HostpeerLink::send(std::span<const uint8_t> datagram) {
  if (proto::is_qp_alloc_hypercall(datagram)) {
    const int64_t mapped = send_memory_map();
    if (mapped < VMCI_SUCCESS) return mapped;
  }
  return connection_->request(proto::FrameType::kDatagram, datagram).result;
}

int64_t HostpeerLink::send_memory_map() {
  VmciDevice* device;
  GuestMemory* memory;
  {
    std::lock_guard lock(mutex_);
    device = device_;
    memory = memory_;
  }
  if (device == nullptr || memory == nullptr) return VMCI_ERROR_UNAVAILABLE;
  std::lock_guard lock(map_mutex_);
  const uint64_t generation = memory->generation();
  const bool ppn64 = (device->caps_in_use() & kCapsPpn64) != 0;
  if (map_generation_ == generation && map_ppn64_ == ppn64) return VMCI_SUCCESS;
  const auto map = memory->current();
  if (!map) return VMCI_ERROR_INVALID_ARGS;  // no RAM yet: nothing can be a page of it
  std::vector<proto::GuestMemoryRegion> regions;
  std::vector<int> fds;
  for (const auto& region : map->regions()) {
    if (regions.size() == proto::kMaxGuestMemoryRegions) break;
    auto at = std::find(fds.begin(), fds.end(), region->fd());
    if (at == fds.end()) {
      if (fds.size() == proto::kMaxGuestMemoryFiles) continue;  // (QEMU sends at most 8)
      fds.push_back(region->fd());
      at = fds.end() - 1;
    }
    regions.push_back({region->gpa(), region->size(), region->file_offset(),
                       static_cast<uint32_t>(at - fds.begin()), 0});
  }
  const auto reply = connection_->request(
      proto::FrameType::kGuestMemory,
      proto::encode_guest_memory(ppn64 ? proto::kGuestMemoryPpn64 : 0, regions), {}, fds);
  if (reply.result < VMCI_SUCCESS) {
    log_->error("VMCI device: hostpeer refused the guest's RAM map ({} regions): {}",
                regions.size(), reply.result);
    return reply.result;
  }
  map_generation_ = generation;
  map_ppn64_ = ppn64;
  log_->info("VMCI device: hostpeer has the guest's RAM map ({} regions, {}-bit page numbers)",
             regions.size(), ppn64 ? 64 : 32);
  return VMCI_SUCCESS;
}

void HostpeerLink::taken(uint32_t delivery_id) { connection_->acknowledge(delivery_id); }

void HostpeerLink::deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) {
  std::unique_lock lock(mutex_);
  if (device_ == nullptr) {
    if (!stopping_) early_.emplace_back(delivery_id, std::move(datagram));
    return;
  }
  VmciDevice* device = device_;
  lock.unlock();
  device->deliver(delivery_id, std::move(datagram));
}

void HostpeerLink::notify_loop() {
  proto::NotifyMemory* memory = connection_->notify_memory();
  proto::NotifyWakeWord* word = &memory->wake;
  std::vector<uint32_t> rung;
  while (!stopping_) {
    const uint32_t seen = proto::sequence(word);
    VmciDevice* device;
    {
      std::lock_guard lock(mutex_);
      device = device_;
    }
    // Bits wait in hostpeer's bitmap until the guest has its own.
    if (device != nullptr && device->has_notify_bitmap()) {
      rung.clear();
      for (uint32_t index = 0; index < proto::kNotifyIndexes; ++index) {
        if (proto::take(memory, index)) rung.push_back(index);
      }
      if (!rung.empty() && !device->notify_indexes(rung)) {
        // The guest's bitmap is gone (its RAM changed): put the bits back,
        // without news, for when it registers again.
        for (uint32_t index : rung) std::atomic_ref<uint8_t>(memory->bitmap[index]).fetch_or(1);
      }
    }
    proto::NotifyWakeWord* const words[] = {word};
    const uint32_t seens[] = {seen};
    proto::wait_for_any(words, seens, kNotifyLook);
  }
}

}  // namespace vmci::pcidev
