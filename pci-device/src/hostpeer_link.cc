// hostpeer_link.cc: the device's guest connection to hostpeer (see
// hostpeer_link.h).
#include "hostpeer_link.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "connection.h"
#include "vmci/proto/notify_memory.h"

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
  connection_ = guest::internal::Connection::open(options, std::move(sink), &status, &error);
  if (!connection_) throw std::runtime_error(error);
  log_->info("VMCI device: context {} of hostpeer", connection_->context_id());
}

HostpeerLink::~HostpeerLink() { stop(); }

vmci_id HostpeerLink::context_id() const { return connection_->context_id(); }

bool HostpeerLink::alive() const { return connection_ && connection_->alive(); }

void HostpeerLink::start(VmciDevice& device) {
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> early;
  {
    std::lock_guard lock(mutex_);
    device_ = &device;
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
  return connection_->request(proto::FrameType::kDatagram, datagram).result;
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
