// connection.h: one control connection to hostpeer: the handshake, framed
// requests matched to their results, and deliveries handed to a sink.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "vmci/guest/driver.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/notify_memory.h"
#include "vmci/proto/ring_channel.h"
#include "vmci/proto/shared_memory.h"

namespace vmci::guest::internal {

// A kQueuePairMemory frame: a pair's memory as extents of the files that
// came with it (owned: closed with the object).
struct QueuePairMemoryFrame {
  QueuePairMemoryFrame() = default;
  QueuePairMemoryFrame(const QueuePairMemoryFrame&) = delete;
  QueuePairMemoryFrame& operator=(const QueuePairMemoryFrame&) = delete;
  ~QueuePairMemoryFrame();
  vmci_handle handle = VMCI_INVALID_HANDLE;
  std::vector<proto::QueuePairExtent> extents;
  std::vector<int> fds;
};

class Connection {
 public:
  // Receives what hostpeer pushes. Runs on the reader thread; must not block.
  struct Sink {
    std::function<void(uint32_t delivery_id, std::vector<uint8_t> datagram)> deliver;
    std::function<void(const std::string& reason)> closed;
    // A ring-channel grant; `channel`: the channel's page, mapped, when it
    // came with the grant (else null: the channel is known already).
    std::function<void(const proto::RingGrantBody& grant,
                       std::shared_ptr<proto::RingChannel> channel)>
        ring_grant;
    std::function<void(const proto::RingChannelClosedBody& closed)> ring_channel_closed;
    // A pair's memory as extents (host connections): before the result of
    // the alloc that attached to a pair of guest pages, or later, when a
    // guest supplying its pages attached to a pair this connection made.
    std::function<void(std::shared_ptr<QueuePairMemoryFrame> memory)> queue_pair_memory;
  };

  // Runs on the reader thread when a result arrives, before the caller wakes.
  using ResultHook = std::function<void(const proto::ResultBody&)>;

  // A request's result, with the descriptors hostpeer sent with it; those
  // left in `fds` are closed with the Reply.
  struct Reply {
    Reply() = default;
    Reply(int64_t r, vmci_handle h, std::vector<int> f) : result(r), handle(h), fds(std::move(f)) {}
    Reply(Reply&& other) noexcept;
    Reply& operator=(Reply&& other) noexcept;
    ~Reply();
    int64_t result = VMCI_ERROR_UNAVAILABLE;
    vmci_handle handle = VMCI_INVALID_HANDLE;
    std::vector<int> fds;
    std::vector<uint8_t> extra;  // the body after the ResultBody (kStats: a StatsBody)
  };

  // Connects and does the handshake, saying `features` (frame.h's
  // HelloFeature bits); null with *status and *error on failure.
  static std::unique_ptr<Connection> open(const ConnectOptions& options, Sink sink, int* status,
                                          std::string* error, uint8_t features = 0);
  ~Connection();

  vmci_id context_id() const { return context_id_; }
  // The protocol minor version of hostpeer's welcome.
  uint16_t hostpeer_minor() const { return hostpeer_minor_; }
  // The connection's doorbell notify memory (vmci/proto/notify_memory.h),
  // mapped; it stays mapped while the connection object lives.
  proto::NotifyMemory* notify_memory() const {
    return reinterpret_cast<proto::NotifyMemory*>(notify_->data());
  }
  // Its wake word, keeping the mapping while held.
  std::shared_ptr<proto::NotifyWakeWord> notify_wake_word() const {
    return std::shared_ptr<proto::NotifyWakeWord>(notify_, &notify_memory()->wake);
  }
  bool alive() const;
  std::string close_reason() const;

  // Sends a request and waits for its result: VMCI_ERROR_UNAVAILABLE at
  // once if the connection is gone, or when it goes while waiting.
  // `fds` (the caller's) go with the frame by SCM_RIGHTS, their count in
  // its header's flags (kGuestMemory).
  // `while_waiting` runs on the caller's thread once the frame is sent,
  // before the wait: work that overlaps hostpeer's.
  Reply request(proto::FrameType type, std::span<const uint8_t> body, ResultHook hook = {},
                std::span<const int> fds = {}, const std::function<void()>& while_waiting = {});
  // Tells hostpeer a delivery is taken for its callback: by counting it in
  // the notify memory if hostpeer takes counts (kFeatureCountedDeliveries
  // said and welcomed), else by a kDelivered frame. Calls must be
  // serialised (the delivery thread's, through a DeliveryAcknowledger).
  void acknowledge(uint32_t delivery_id);
  // Cuts the connection at once; the reader thread ends.
  void abort();

 private:
  Connection(int fd, vmci_id context_id, uint16_t hostpeer_minor, bool counts_deliveries,
             std::shared_ptr<proto::SharedMemory> notify, Sink sink);
  void read_loop();
  void mark_closed(const std::string& reason);
  bool send_frame(const std::vector<uint8_t>& frame, std::span<const int> fds = {});

  struct Pending {
    bool done = false;
    Reply reply;
    ResultHook hook;
  };

  const int fd_;
  const vmci_id context_id_;
  const uint16_t hostpeer_minor_;
  const bool counts_deliveries_;
  uint32_t deliveries_reached_ = 0;  // acknowledge()'s count
  const std::shared_ptr<proto::SharedMemory> notify_;
  Sink sink_;
  std::mutex write_mutex_;
  mutable std::mutex mutex_;  // guards the fields below
  std::condition_variable result_ready_;
  std::map<uint32_t, Pending*> pending_;
  uint32_t next_request_id_ = 1;
  bool closed_ = false;
  std::string close_reason_;
  std::thread reader_;
};

}  // namespace vmci::guest::internal
