// session.h: one peer's connection to the socket server. Reads frames
// (header checked before the body is read), hands requests to the core,
// writes results and deliveries one at a time. Any error ends only this
// session, with a goodbye that says why.
#pragma once

#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/hypervisor.h"
#include "memory/notify_memory_file.h"
#include "server/asio.h"
#include "server/locked_core.h"

namespace spdlog {
class logger;
}

namespace vmci::host {

// Who may connect, and as what.
struct PeerPolicy {
  uid_t own_uid;
  std::vector<uid_t> guest_uids;
  std::vector<uid_t> host_uids;
  bool may_connect(uid_t uid) const;
  bool may_be_host(uid_t uid) const;
};

class Session : public std::enable_shared_from_this<Session>, public PeerSink {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;

  Session(Socket socket, LockedCore& core, const PeerPolicy& policy,
          std::shared_ptr<spdlog::logger> log);
  ~Session() override;

  void start();
  // Ends the session (from the I/O thread).
  void close(const std::string& reason);

  // PeerSink: called under the core's lock, from any thread.
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) override;
  void ring(uint64_t index) override;
  void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
             bool first) override;
  void close_ring_channel(uint32_t channel_id, proto::RingSide side) override;

 private:
  // Bytes queued for one peer before it counts as not reading and is cut off.
  static constexpr size_t kMaxQueuedBytes = 16 * 1024 * 1024;

  void read_header();
  void read_body();
  void handle_frame();
  void handle_hello();
  // A frame to write, with the descriptors (owned) that go with its first byte.
  struct Outgoing {
    std::vector<uint8_t> bytes;
    std::vector<int> fds;
  };

  void handle_request();
  // `memory`: a queue pair's memory to pass with the result.
  void result(uint32_t request_id, int64_t value, vmci_handle handle = VMCI_INVALID_HANDLE,
              const QueuePairMemory* memory = nullptr);
  // The answer to kStats.
  void stats_result(uint32_t request_id);
  void queue_frame(std::vector<uint8_t> frame, std::vector<int> fds = {});
  // Queues a frame from any thread (after what the I/O thread queued).
  void post_frame(std::vector<uint8_t> frame, std::vector<int> fds = {});
  void write_next();
  void write_with_descriptors();
  void written(const boost::system::error_code& ec);
  void close_descriptors();
  // Sends a goodbye, then closes once it is written.
  void goodbye(int status, const std::string& reason);
  std::string name() const;

  Socket socket_;
  LockedCore& core_;
  const PeerPolicy& policy_;
  std::shared_ptr<spdlog::logger> log_;
  uid_t uid_ = 0;
  pid_t pid_ = 0;
  bool denied_ = false;  // the user may not connect (SO_PEERCRED)
  bool admitted_ = false;
  bool closing_ = false;
  PeerId peer_ = 0;
  vmci_id cid_ = VMCI_INVALID_ID;
  proto::Role role_ = proto::Role::kGuest;
  std::unique_ptr<NotifyMemoryFile> notify_;  // made at admission
  proto::FrameHeader header_{};
  std::vector<uint8_t> body_;
  std::deque<Outgoing> writes_;
  // Frames the core made for this peer while handling its request, that
  // go out before that request's result (a ringer's ring grant).
  std::vector<Outgoing> before_result_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool close_when_written_ = false;
  std::string close_reason_;
};

}  // namespace vmci::host
