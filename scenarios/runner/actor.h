// actor.h: an actor: one connection to hostpeer, guest or host. A thread
// actor's is a vmci::guest::Driver inside the runner, with its inbox of
// what its callbacks received; a process actor's lives in a child process
// (process_actor.h), which plays the actor's steps.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model.h"
#include "process_actor.h"
#include "vsock_sockets.h"
#include "vmci/guest/driver.h"

namespace vmci::scenario {

using Clock = std::chrono::steady_clock;

struct InboxItem {
  enum class Kind { kDatagram, kEvent, kDoorbell };
  Kind kind = Kind::kDatagram;
  // Datagrams; doorbells (dst: the doorbell rung).
  vmci_handle dst = VMCI_INVALID_HANDLE;
  vmci_handle src = VMCI_INVALID_HANDLE;
  std::vector<uint8_t> payload;
  // Events.
  vmci_id subscription = 0;
  uint32_t event = 0;
  vmci_id context_id = VMCI_INVALID_ID;  // CTX_* events
  vmci_handle qp = VMCI_INVALID_HANDLE;  // QP_* events
  vmci_id peer_id = VMCI_INVALID_ID;     // QP_* events

  std::string describe() const;
};

// What an actor's callbacks received, in arrival order. Thread-safe.
class Inbox {
 public:
  void push(InboxItem item);
  // Takes the first item that matches, queued or arriving before deadline.
  std::optional<InboxItem> take(const std::function<bool(const InboxItem&)>& match,
                                Clock::time_point deadline);
  // The first item queued or arriving before deadline, left in place.
  std::optional<InboxItem> peek_any(Clock::time_point deadline);
  std::vector<InboxItem> contents();
  void clear();

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<InboxItem> items_;
};

class Actor {
 public:
  // `program`: what a process actor's child runs (vmci-scenario).
  explicit Actor(ActorSpec spec, std::string program = "/proc/self/exe")
      : spec_(std::move(spec)), program_(std::move(program)) {}

  const ActorSpec& spec() const { return spec_; }
  // A new connection (after a kill or disconnect, too); the inbox is emptied.
  // A process actor gets a new child process.
  int connect(const std::string& socket_path, std::string* error);
  // Ends the connection as if the process died: no clean close (a process
  // actor's process gets SIGKILL).
  void kill();
  // Closes the connection cleanly.
  void disconnect();

  // The crash matrix's watch, unseen by the scenario: subscribes to
  // QP_PEER_DETACH (and, for a host, CTX_REMOVED) with callbacks of its own
  // that do not feed the inbox. Returns the first failed status, or 0.
  int watch_peer_events();
  // What those callbacks saw so far (events only).
  std::vector<InboxItem> watched();
  // The queue pairs this actor is attached to: its queue-pair variables
  // not detached, and its vSockets connections' pairs.
  std::vector<vmci_handle> live_queue_pairs();

  // Connected now: not killed, disconnected or cut off.
  bool connected();

  // A process actor's child, or null (a thread actor, or none running).
  ProcessActor* process() { return process_.get(); }
  // What is left in the inbox, described.
  std::vector<std::string> leftovers();

  // The connection, or null when there is none (always, for a process actor).
  vmci::guest::Driver* driver() { return driver_.get(); }
  // The actor's context id now: 2 for hosts; VMCI_INVALID_ID if unconnected.
  vmci_id context_id() const { return context_id_; }
  Inbox& inbox() { return inbox_; }

  // The queue pairs this actor allocated, by variable name. The slot stays
  // (empty) after a detach; a pair outlives a kill or reconnect, as mapped
  // memory outlives a dead connection.
  void set_qpair(const std::string& name, std::unique_ptr<QueuePair> qpair);
  // The slot of `name`, or null if this actor never bound it.
  std::unique_ptr<QueuePair>* qpair_slot(const std::string& name);

  // Callbacks for the kernel API calls, feeding the inbox (or `into`).
  DatagramCallback datagram_callback();
  EventCallback event_callback(Inbox* into = nullptr);
  // For a doorbell whose handle is known once doorbell_create returns:
  // set_handle() then tells the callback which doorbell it is.
  struct DoorbellSlot {
    std::promise<vmci_handle> promise;
    std::shared_future<vmci_handle> handle = promise.get_future().share();
  };
  DoorbellCallback doorbell_callback(std::shared_ptr<DoorbellSlot> slot);

  // The actor's vSockets (a thread actor's; a process actor's are its child's).
  VsockSockets& vsock() { return vsock_; }

 private:
  ActorSpec spec_;
  std::string program_;
  vmci_id context_id_ = VMCI_INVALID_ID;
  std::atomic<bool> killed_{false};
  std::mutex qpairs_mutex_;  // guards the map, not the pairs
  std::map<std::string, std::unique_ptr<QueuePair>> qpairs_;
  Inbox inbox_;
  Inbox watched_;  // the crash matrix's events
  // Declared after the inbox: destroyed first, so no callback fills a
  // destroyed inbox.
  std::unique_ptr<vmci::guest::Driver> driver_;
  std::unique_ptr<ProcessActor> process_;
  // Declared after the connection: closed before it goes.
  VsockSockets vsock_;
};

// An actor's spec as JSON and back (what a process actor's child is given).
nlohmann::json to_json(const ActorSpec& spec);
ActorSpec actor_spec_from_json(const nlohmann::json& j);
nlohmann::json to_json(const InboxItem& item);
InboxItem inbox_item_from_json(const nlohmann::json& j);

}  // namespace vmci::scenario
