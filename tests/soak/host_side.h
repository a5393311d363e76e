// host_side.h: the soak's host role, as a device proxy plays it: one host
// connection (context 2) that owns a datagram handle and a doorbell, checks
// every datagram the guests send to it, rings the guests' doorbells, and
// allocates one queue pair per guest session (HostLink) and streams through
// it both ways, checking every byte.
//
//   FailureLog failures;
//   auto host = HostSide::connect(socket, failures, &error);
//   HostLink link(host->endpoint(), failures, "slot 3 session 7");
//   link.allocate(guest_cid, 65536, 4096);  ... link.start(...);
//
// Every violation goes to the FailureLog; nothing throws.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "stream_pump.h"
#include "vmci/guest/driver.h"

namespace vmci::soak {

// What went wrong, from any thread. Each failure is printed at once (with
// the time since the soak began) and kept for the summary.
class FailureLog {
 public:
  void add(const std::string& what);
  bool any() const { return any_.load(); }
  std::vector<std::string> all() const;

 private:
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  mutable std::mutex mutex_;
  std::vector<std::string> failures_;
  std::atomic<bool> any_{false};
};

// The sequence number a guest stamps on datagram `n` of session `session`
// (stamped_payload.h): the session in the top 24 bits.
inline uint64_t datagram_sequence(uint32_t session, uint64_t n) {
  return (uint64_t{session} << 40) | n;
}

// Checks every datagram that reaches the host's handle: each byte as
// stamped, from the source handle its session registered, and in order
// per session with none missing (datagrams keep their order per guest and
// handle, docs/FIDELITY.md).
class DatagramLedger {
 public:
  explicit DatagramLedger(FailureLog& failures) : failures_(failures) {}
  // Datagrams of `session` may come from `source` from now on.
  void open(uint32_t session, vmci_handle source);
  // The handle's callback (on the host driver's delivery thread).
  int deliver(const vmci_datagram* dg);
  // Waits until `count` datagrams of the session arrived; false on timeout.
  bool wait_for(uint32_t session, uint64_t count, std::chrono::seconds timeout);
  uint64_t received(uint32_t session) const;
  uint64_t total() const;

 private:
  struct Session {
    vmci_handle source;
    uint64_t next = 0;
  };
  FailureLog& failures_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<uint32_t, Session> sessions_;
  uint64_t total_ = 0;
};

// Events the host connection got (context removals, queue-pair peers
// attaching and detaching), each to be taken once by whoever waits for it.
class HostEvents {
 public:
  void record(const vmci_event_data* ed);
  // Takes one event `event` about context `cid` (VMCI_EVENT_CTX_REMOVED) or
  // pair `handle` (the QP events); false if none came within `timeout`.
  bool take_context_removed(vmci_id cid, std::chrono::seconds timeout);
  bool take_pair_event(uint32_t event, vmci_handle handle, std::chrono::seconds timeout);
  uint64_t count(uint32_t event) const;

 private:
  bool take(uint32_t event, uint64_t key, std::chrono::seconds timeout);
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::multiset<std::pair<uint32_t, uint64_t>> waiting_;
  std::map<uint32_t, uint64_t> counts_;
};

// Rings every guest doorbell it holds, over and over (every ~1 ms), from
// its own thread, until destroyed. Every ring must succeed: a doorbell is
// removed before its guest goes.
class DoorbellRinger {
 public:
  DoorbellRinger(Endpoint& host, FailureLog& failures);
  ~DoorbellRinger();
  void add(vmci_handle bell);
  // Returns once no ring of `bell` is in progress.
  void remove(vmci_handle bell);
  uint64_t rings() const { return rings_.load(); }

 private:
  void run();
  Endpoint& host_;
  FailureLog& failures_;
  std::mutex mutex_;
  std::vector<vmci_handle> bells_;
  std::atomic<uint64_t> rings_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The host connection with its datagram handle and doorbell.
class HostSide {
 public:
  // Connects as a host; creates the handle and the doorbell, subscribes to
  // the events. Null (and *error) on failure.
  static std::unique_ptr<HostSide> connect(const std::string& socket, FailureLog& failures,
                                           std::string* error);
  ~HostSide();

  guest::Driver& endpoint() { return *driver_; }
  vmci_handle datagram_handle() const { return datagram_handle_; }
  vmci_handle doorbell() const { return doorbell_; }
  DatagramLedger& ledger() { return ledger_; }
  HostEvents& events() { return events_; }
  DoorbellRinger& ringer() { return *ringer_; }
  uint64_t doorbell_callbacks() const { return bell_callbacks_.load(); }

  // Stops ringing and destroys the datagram handle and the event
  // subscriptions; the doorbell stays (stats then show it alone).
  void close_handles();
  // Destroys the doorbell too.
  void close_doorbell();

 private:
  HostSide(FailureLog& failures) : failures_(failures), ledger_(failures) {}
  FailureLog& failures_;
  // Callbacks use these: they outlive the driver.
  DatagramLedger ledger_;
  HostEvents events_;
  std::atomic<uint64_t> bell_callbacks_{0};
  std::unique_ptr<guest::Driver> driver_;
  std::unique_ptr<DoorbellRinger> ringer_;
  vmci_handle datagram_handle_ = VMCI_INVALID_HANDLE;
  vmci_handle doorbell_ = VMCI_INVALID_HANDLE;
  std::vector<vmci_id> subscriptions_;
};

// The host's end of one guest session's queue pair: a writer thread
// streaming host -> guest and a reader thread checking guest -> host.
class HostLink {
 public:
  HostLink(Endpoint& host, FailureLog& failures, std::string label);
  // Abandons the pumps and detaches the pair if still attached.
  ~HostLink();
  HostLink(const HostLink&) = delete;
  HostLink& operator=(const HostLink&) = delete;

  // Creates a pair for guest `peer` (produce: the host -> guest queue).
  int allocate(vmci_id peer, uint64_t produce, uint64_t consume);
  vmci_handle handle() const { return handle_; }
  // Starts both pumps; call once the guest attached.
  void start(uint64_t seed_out, uint64_t seed_in, uint64_t chunk_seed);

  // Clean end, in this order: stop writing (the bytes the guest must read),
  // then read until the guest's `bytes`; false (with a failure) otherwise.
  uint64_t stop_writing();
  bool finish_reading(uint64_t bytes);
  // After the guest was killed: both pumps must end at NOTATTACHED (or
  // without error) within `timeout`; false (with a failure) otherwise.
  bool wait_peer_gone(std::chrono::seconds timeout);
  // Stops both pumps at once (teardown after a failure).
  void abandon();
  int detach();

  uint64_t bytes_read() const { return in_.progress.load(); }
  uint64_t bytes_written() const { return out_.progress.load(); }

 private:
  void check(const PumpOutcome& outcome, const char* direction, bool peer_may_go);
  Endpoint& host_;
  FailureLog& failures_;
  const std::string label_;
  std::unique_ptr<QueuePair> qp_;
  vmci_handle handle_ = VMCI_INVALID_HANDLE;
  PumpControl out_, in_;
  PumpOutcome out_outcome_, in_outcome_;
  std::atomic<bool> out_done_{false}, in_done_{false};
  std::thread writer_, reader_;
};

std::string handle_text(vmci_handle h);
vmci_handle parse_handle(const std::string& text);

}  // namespace vmci::soak
