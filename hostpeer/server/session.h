// session.h: one peer's connection to the socket server. Reads frames
// (header checked before the body is read), hands requests to the core,
// writes results and deliveries in order. Any error ends only this session,
// with a goodbye that says why when the peer still reads.
//
// What a session holds for its peer is bounded: a peer must say hello
// within the hello deadline; its unread frames may take kMaxQueuedBytes of
// memory and hold at most its share of the DescriptorBudget; past either
// bound it is cut off at once, and everything queued for it is dropped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/hypervisor.h"
#include "memory/notify_memory_file.h"
#include "server/asio.h"
#include "server/descriptor_budget.h"
#include "server/locked_core.h"
#include "server/output_queue.h"

namespace spdlog {
class logger;
}

namespace vmci::host {

// Who may connect, and as what: hostpeer's own user as either role, the
// users of `guest_uids` as guests, those of `host_uids` as either.
struct PeerPolicy {
  uid_t own_uid;
  std::vector<uid_t> guest_uids;
  std::vector<uid_t> host_uids;
  bool may_connect(uid_t uid) const;
  bool may_be_host(uid_t uid) const;
  // The users of either list, other than hostpeer's own: those the socket
  // file must let in (socket_access.h).
  std::vector<uid_t> other_users() const;
};

class Session : public std::enable_shared_from_this<Session>,
                public PeerSink,
                public DescriptorHolder {
 public:
  using Socket = boost::asio::local::stream_protocol::socket;
  // Memory that frames queued for one peer may take before it counts as
  // not reading and is cut off.
  static constexpr size_t kMaxQueuedBytes = 16 * 1024 * 1024;
  // How long a goodbye (or a refusal) may wait for the peer to read it.
  static constexpr std::chrono::milliseconds kGoodbyeDeadline{2000};

  // `budget` and `policy` outlive the session's start() and close().
  Session(Socket socket, LockedCore& core, const PeerPolicy& policy, DescriptorBudget& budget,
          std::chrono::milliseconds hello_deadline, std::shared_ptr<spdlog::logger> log);
  ~Session() override;

  void start();
  // Ends the session (from the I/O thread): drops what is queued for the
  // peer and gives back its descriptors.
  void close(const std::string& reason);
  // DescriptorHolder: close(), logged as a warning.
  void cut_off(const std::string& reason) override;

  // PeerSink: called under the core's lock, from any thread.
  void deliver(uint32_t delivery_id, std::vector<uint8_t> datagram) override;
  void ring(uint64_t index) override;
  uint32_t deliveries_reached() const override;
  void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
             bool first) override;
  void close_ring_channel(uint32_t channel_id, proto::RingSide side) override;
  void queue_pair_memory(vmci_handle handle,
                         std::shared_ptr<const QueuePairMemory> memory) override;

 private:
  void read_header();
  // Reads the rest of the header with recvmsg, taking the descriptors that
  // come with it (the only bytes that may carry any).
  void read_header_part();
  void read_body();
  void handle_frame();
  void handle_hello();
  // A frame to write, with the descriptors (owned) that go with its first byte.
  struct Outgoing {
    std::vector<uint8_t> bytes;
    std::vector<int> fds;
  };

  void handle_request();
  void handle_guest_memory(uint32_t request_id);
  // A kQueuePairMemory frame of `memory` (the guest's pages) for `handle`,
  // its descriptors dup'ed; false (and nothing made) when out of them.
  bool queue_pair_memory_frame(vmci_handle handle, const QueuePairMemory& memory,
                               Outgoing* out);
  // Closes the session unless the peer has said hello (or, after a
  // goodbye, read it) by then.
  void arm_deadline(std::chrono::milliseconds after);
  // Ends the deadline's wait without leaving a wake-up behind: see the .cc.
  void drop_deadline();
  // `memory`: a queue pair's memory to pass with the result.
  void result(uint32_t request_id, int64_t value, vmci_handle handle = VMCI_INVALID_HANDLE,
              const QueuePairMemory* memory = nullptr);
  // The answer to kStats.
  void stats_result(uint32_t request_id);
  // kIntrospect: the snapshot's JSON after the result (host peers only),
  // whole for peers before 2.4, else in pieces (frame.h's IntrospectBody).
  void introspection_result(uint32_t request_id);
  void queue_frame(std::vector<uint8_t> frame, std::vector<int> fds = {});
  // Queues a frame from any thread (after what the I/O thread queued).
  void post_frame(std::vector<uint8_t> frame, std::vector<int> fds = {});
  void write_next();
  // One send of out_.next() (with its descriptors): sent bytes, or -1 with errno.
  ssize_t send_next();
  // Sends a goodbye, then closes once it is written.
  void goodbye(int status, const std::string& reason);
  // Closes once what is queued is written (or after kGoodbyeDeadline).
  void close_once_written(const std::string& reason);
  std::string name() const;

  Socket socket_;
  LockedCore& core_;
  const PeerPolicy& policy_;
  DescriptorBudget& budget_;
  const std::chrono::milliseconds hello_deadline_;
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::steady_timer deadline_;
  bool deadline_armed_ = false;  // a wait of arm_deadline's is pending
  uid_t uid_ = 0;
  pid_t pid_ = 0;
  bool denied_ = false;  // the user may not connect (SO_PEERCRED)
  bool admitted_ = false;
  bool closing_ = false;
  PeerId peer_ = 0;
  vmci_id cid_ = VMCI_INVALID_ID;
  proto::Role role_ = proto::Role::kGuest;
  uint16_t peer_minor_ = 0;                   // the protocol minor version of its hello
  std::string introspection_;                 // the snapshot being answered in pieces
  std::unique_ptr<NotifyMemoryFile> notify_;  // made at admission
  proto::FrameHeader header_{};
  size_t header_read_ = 0;            // bytes of header_ read so far
  std::vector<int> received_fds_;     // with the frame being read (owned)
  std::vector<uint8_t> body_;
  OutputQueue out_;
  // Frames the core made for this peer while handling its request, that
  // go out before that request's result (a ringer's ring grant).
  std::vector<Outgoing> before_result_;
  bool writing_ = false;
  bool close_when_written_ = false;
  std::string close_reason_;
};

}  // namespace vmci::host
