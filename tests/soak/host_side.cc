#include "host_side.h"

#include <cstdio>
#include <ctime>

#include "stamped_payload.h"
#include "vmci/proto/names.h"

namespace vmci::soak {

std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

vmci_handle parse_handle(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return VMCI_INVALID_HANDLE;
  return VMCI_MAKE_HANDLE(static_cast<vmci_id>(std::stoul(text.substr(0, colon))),
                          static_cast<vmci_id>(std::stoul(text.substr(colon + 1))));
}

namespace {

uint64_t handle_key(vmci_handle h) { return (uint64_t{h.context} << 32) | h.resource; }

}  // namespace

void FailureLog::add(const std::string& what) {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // The wall clock too, to find the moment in hostpeer's log.
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  char clock[32];
  std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&secs));
  std::lock_guard lock(mutex_);
  std::fprintf(stderr, "vmci-soak: FAILURE at %.1f s (%s.%03lld): %s\n", t, clock,
               static_cast<long long>(ms.count()), what.c_str());
  failures_.push_back(what);
  any_ = true;
}

std::vector<std::string> FailureLog::all() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

// --- DatagramLedger ---

void DatagramLedger::open(uint32_t session, vmci_handle source) {
  std::lock_guard lock(mutex_);
  sessions_[session] = Session{source, 0};
}

int DatagramLedger::deliver(const vmci_datagram* dg) {
  const auto* payload = reinterpret_cast<const uint8_t*>(dg + 1);
  const auto size = static_cast<size_t>(dg->payload_size);
  const uint64_t seq = testing::stamped_sequence(payload, size);
  std::string problem;
  {
    std::lock_guard lock(mutex_);
    ++total_;
    if (seq == ~uint64_t{0}) {
      problem = "a datagram of " + std::to_string(size) + " bytes from " + handle_text(dg->src) +
                " is not as stamped (a byte differs)";
    } else {
      const auto session = static_cast<uint32_t>(seq >> 40);
      const uint64_t n = seq & ((uint64_t{1} << 40) - 1);
      auto it = sessions_.find(session);
      if (it == sessions_.end()) {
        problem = "a datagram of unknown session " + std::to_string(session) + " from " +
                  handle_text(dg->src);
      } else if (!VMCI_HANDLE_EQUAL(it->second.source, dg->src)) {
        problem = "a datagram of session " + std::to_string(session) + " came from " +
                  handle_text(dg->src) + ", not " + handle_text(it->second.source);
      } else if (n != it->second.next) {
        problem = "session " + std::to_string(session) + ": datagram " + std::to_string(n) +
                  " arrived where " + std::to_string(it->second.next) +
                  " was due (lost, duplicated or reordered)";
        it->second.next = n + 1;
      } else {
        ++it->second.next;
      }
    }
  }
  arrived_.notify_all();
  if (!problem.empty()) failures_.add(problem);
  return VMCI_SUCCESS;
}

bool DatagramLedger::wait_for(uint32_t session, uint64_t count, std::chrono::seconds timeout) {
  std::unique_lock lock(mutex_);
  return arrived_.wait_for(lock, timeout, [&] { return sessions_[session].next >= count; });
}

uint64_t DatagramLedger::received(uint32_t session) const {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(session);
  return it == sessions_.end() ? 0 : it->second.next;
}

uint64_t DatagramLedger::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

// --- HostEvents ---

void HostEvents::record(const vmci_event_data* ed) {
  uint64_t key = 0;
  if (ed->event == VMCI_EVENT_CTX_REMOVED) {
    key = reinterpret_cast<const vmci_event_payload_context*>(ed + 1)->context_id;
  } else {
    key = handle_key(reinterpret_cast<const vmci_event_payload_qp*>(ed + 1)->handle);
  }
  {
    std::lock_guard lock(mutex_);
    waiting_.insert({ed->event, key});
    ++counts_[ed->event];
  }
  arrived_.notify_all();
}

bool HostEvents::take(uint32_t event, uint64_t key, std::chrono::seconds timeout) {
  std::unique_lock lock(mutex_);
  const auto wanted = std::make_pair(event, key);
  if (!arrived_.wait_for(lock, timeout, [&] { return waiting_.count(wanted) > 0; })) return false;
  waiting_.erase(waiting_.find(wanted));
  return true;
}

bool HostEvents::take_context_removed(vmci_id cid, std::chrono::seconds timeout) {
  return take(VMCI_EVENT_CTX_REMOVED, cid, timeout);
}

bool HostEvents::take_pair_event(uint32_t event, vmci_handle handle,
                                 std::chrono::seconds timeout) {
  return take(event, handle_key(handle), timeout);
}

uint64_t HostEvents::count(uint32_t event) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(event);
  return it == counts_.end() ? 0 : it->second;
}

// --- DoorbellRinger ---

DoorbellRinger::DoorbellRinger(Endpoint& host, FailureLog& failures)
    : host_(host), failures_(failures), thread_([this] { run(); }) {}

DoorbellRinger::~DoorbellRinger() {
  stop_ = true;
  thread_.join();
}

void DoorbellRinger::add(vmci_handle bell) {
  std::lock_guard lock(mutex_);
  bells_.push_back(bell);
}

void DoorbellRinger::remove(vmci_handle bell) {
  std::lock_guard lock(mutex_);
  std::erase_if(bells_, [&](vmci_handle h) { return VMCI_HANDLE_EQUAL(h, bell); });
}

void DoorbellRinger::run() {
  while (!stop_) {
    {
      // Held while ringing, so remove() returns only between rounds.
      std::lock_guard lock(mutex_);
      for (const vmci_handle bell : bells_) {
        const int result = host_.doorbell_notify(bell, VMCI_NO_PRIVILEGE_FLAGS);
        if (result != VMCI_SUCCESS) {
          failures_.add("host ringing guest doorbell " + handle_text(bell) + ": " +
                        proto::describe_result(result));
        } else {
          ++rings_;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// --- HostSide ---

std::unique_ptr<HostSide> HostSide::connect(const std::string& socket, FailureLog& failures,
                                            std::string* error) {
  std::unique_ptr<HostSide> host(new HostSide(failures));
  int status = 0;
  host->driver_ = guest::Driver::connect({.socket_path = socket, .role = proto::Role::kHost},
                                         &status, error);
  if (!host->driver_) return nullptr;
  auto& driver = *host->driver_;
  HostSide* self = host.get();
  int rc = driver.datagram_create_handle(
      VMCI_INVALID_ID, VMCI_FLAG_DG_NONE, VMCI_NO_PRIVILEGE_FLAGS,
      [self](vmci_datagram* dg) { return self->ledger_.deliver(dg); }, &host->datagram_handle_);
  if (rc != VMCI_SUCCESS) {
    *error = "host datagram_create_handle: " + proto::describe_result(rc);
    return nullptr;
  }
  rc = driver.doorbell_create(&host->doorbell_, 0, VMCI_NO_PRIVILEGE_FLAGS,
                              [self] { ++self->bell_callbacks_; });
  if (rc != VMCI_SUCCESS) {
    *error = "host doorbell_create: " + proto::describe_result(rc);
    return nullptr;
  }
  for (uint32_t event :
       {VMCI_EVENT_CTX_REMOVED, VMCI_EVENT_QP_PEER_ATTACH, VMCI_EVENT_QP_PEER_DETACH}) {
    vmci_id sub = VMCI_INVALID_ID;
    rc = driver.event_subscribe(
        event, [self](vmci_id, vmci_event_data* ed) { self->events_.record(ed); }, &sub);
    if (rc != VMCI_SUCCESS) {
      *error = "host event_subscribe: " + proto::describe_result(rc);
      return nullptr;
    }
    host->subscriptions_.push_back(sub);
  }
  host->ringer_ = std::make_unique<DoorbellRinger>(driver, failures);
  return host;
}

HostSide::~HostSide() {
  ringer_.reset();
  driver_.reset();
}

void HostSide::close_handles() {
  ringer_.reset();
  for (vmci_id sub : subscriptions_) {
    const int rc = driver_->event_unsubscribe(sub);
    if (rc != VMCI_SUCCESS) failures_.add("host event_unsubscribe: " + proto::describe_result(rc));
  }
  subscriptions_.clear();
  if (!VMCI_HANDLE_INVALID(datagram_handle_)) {
    const int rc = driver_->datagram_destroy_handle(datagram_handle_);
    if (rc != VMCI_SUCCESS) {
      failures_.add("host datagram_destroy_handle: " + proto::describe_result(rc));
    }
    datagram_handle_ = VMCI_INVALID_HANDLE;
  }
}

void HostSide::close_doorbell() {
  if (VMCI_HANDLE_INVALID(doorbell_)) return;
  const int rc = driver_->doorbell_destroy(doorbell_);
  if (rc != VMCI_SUCCESS) failures_.add("host doorbell_destroy: " + proto::describe_result(rc));
  doorbell_ = VMCI_INVALID_HANDLE;
}

// --- HostLink ---

HostLink::HostLink(Endpoint& host, FailureLog& failures, std::string label)
    : host_(host), failures_(failures), label_(std::move(label)) {}

HostLink::~HostLink() {
  abandon();
  if (qp_) host_.qpair_detach(&qp_);
}

int HostLink::allocate(vmci_id peer, uint64_t produce, uint64_t consume) {
  handle_ = VMCI_INVALID_HANDLE;
  return host_.qpair_alloc(&qp_, &handle_, produce, consume, peer, 0, VMCI_NO_PRIVILEGE_FLAGS);
}

void HostLink::start(uint64_t seed_out, uint64_t seed_in, uint64_t chunk_seed) {
  writer_ = std::thread([this, seed_out, chunk_seed] {
    out_outcome_ = pump_out(*qp_, seed_out, chunk_seed, out_);
    out_done_ = true;
  });
  reader_ = std::thread([this, seed_in, chunk_seed] {
    in_outcome_ = pump_in(*qp_, seed_in, ~chunk_seed, in_);
    in_done_ = true;
  });
}

void HostLink::check(const PumpOutcome& outcome, const char* direction, bool peer_may_go) {
  if (!outcome.ok()) {
    failures_.add(label_ + ": host " + direction + " " + handle_text(handle_) + ": " +
                  outcome.error);
  } else if (outcome.peer_gone && !peer_may_go) {
    failures_.add(label_ + ": host " + direction + " " + handle_text(handle_) +
                  ": QUEUEPAIR_NOTATTACHED after " + std::to_string(outcome.bytes) +
                  " bytes, but the guest was neither killed nor detached yet");
  }
}

uint64_t HostLink::stop_writing() {
  out_.stop = true;
  if (writer_.joinable()) writer_.join();
  check(out_outcome_, "writing to", false);
  return out_outcome_.bytes;
}

bool HostLink::finish_reading(uint64_t bytes) {
  in_.target.store(bytes, std::memory_order_release);
  if (reader_.joinable()) reader_.join();
  check(in_outcome_, "reading from", false);
  if (in_outcome_.ok() && in_outcome_.bytes != bytes) {
    failures_.add(label_ + ": host read " + std::to_string(in_outcome_.bytes) +
                  " bytes of the guest's " + std::to_string(bytes));
    return false;
  }
  return in_outcome_.ok() && !in_outcome_.peer_gone;
}

bool HostLink::wait_peer_gone(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while ((!out_done_ || !in_done_) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool ended = out_done_ && in_done_;
  if (!ended) {
    failures_.add(label_ + ": the host's pumps of " + handle_text(handle_) +
                  " still run " + std::to_string(timeout.count()) +
                  " s after the guest was killed (no QUEUEPAIR_NOTATTACHED): writer " +
                  (out_done_ ? "ended" : "running") + ", reader " +
                  (in_done_ ? "ended" : "running"));
  }
  abandon();
  if (ended) {
    check(out_outcome_, "writing to", true);
    check(in_outcome_, "reading from", true);
  }
  return ended;
}

void HostLink::abandon() {
  out_.abandon = true;
  in_.abandon = true;
  if (writer_.joinable()) writer_.join();
  if (reader_.joinable()) reader_.join();
}

int HostLink::detach() {
  abandon();
  return qp_ ? host_.qpair_detach(&qp_) : VMCI_SUCCESS;
}

}  // namespace vmci::soak
