// actor.h: a thread actor: one connection to hostpeer from inside the
// runner (a vmci::guest::Driver, guest or host), and its inbox of what its
// callbacks received.
#pragma once

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
  explicit Actor(ActorSpec spec) : spec_(std::move(spec)) {}

  const ActorSpec& spec() const { return spec_; }
  // A new connection (after a kill or disconnect, too); the inbox is emptied.
  int connect(const std::string& socket_path, std::string* error);
  // Ends the connection as if the process died: no clean close.
  void kill();
  // Closes the connection cleanly.
  void disconnect();

  // The connection, or null when there is none.
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

  // Callbacks for the kernel API calls, feeding the inbox.
  DatagramCallback datagram_callback();
  EventCallback event_callback();
  // For a doorbell whose handle is known once doorbell_create returns:
  // set_handle() then tells the callback which doorbell it is.
  struct DoorbellSlot {
    std::promise<vmci_handle> promise;
    std::shared_future<vmci_handle> handle = promise.get_future().share();
  };
  DoorbellCallback doorbell_callback(std::shared_ptr<DoorbellSlot> slot);

 private:
  ActorSpec spec_;
  vmci_id context_id_ = VMCI_INVALID_ID;
  std::mutex qpairs_mutex_;  // guards the map, not the pairs
  std::map<std::string, std::unique_ptr<QueuePair>> qpairs_;
  Inbox inbox_;
  // Declared after the inbox: destroyed first, so no callback fills a
  // destroyed inbox.
  std::unique_ptr<vmci::guest::Driver> driver_;
};

}  // namespace vmci::scenario
