#include "guest_mode.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "host_side.h"
#include "stamped_payload.h"
#include "stream_pump.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"

namespace vmci::soak {
namespace {

// One line to the soak; whole lines only, from any thread.
class Reply {
 public:
  void say(const std::string& line) {
    std::lock_guard lock(mutex_);
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
  }
  [[noreturn]] void fail(const std::string& what) {
    say("error " + what);
    _exit(1);
  }

 private:
  std::mutex mutex_;
};

// One connection of this guest process: its context, doorbell, datagram
// handle, its end of the host's pair and the threads that use them.
class GuestSession {
 public:
  GuestSession(const GuestModeOptions& options, Reply& reply, uint64_t seed)
      : options_(options), reply_(reply), rng_(seed) {}
  ~GuestSession() {
    stop_producers();
    in_.abandon = true;
    if (reader_.joinable()) reader_.join();
  }

  // Connects (asking for `cid` unless invalid) and creates the handles.
  std::string connect(vmci_id cid) {
    int status = 0;
    std::string error;
    driver_ = guest::Driver::connect({.socket_path = options_.socket, .context_id = cid},
                                     &status, &error);
    if (!driver_) reply_.fail("connect: " + error);
    int rc = driver_->datagram_create_handle(VMCI_INVALID_ID, VMCI_FLAG_DG_NONE,
                                             VMCI_NO_PRIVILEGE_FLAGS,
                                             [](vmci_datagram*) { return VMCI_SUCCESS; }, &dg_);
    if (rc != VMCI_SUCCESS) reply_.fail("datagram_create_handle: " + proto::describe_result(rc));
    rc = driver_->doorbell_create(&bell_, 0, VMCI_NO_PRIVILEGE_FLAGS, [this] { ++callbacks_; });
    if (rc != VMCI_SUCCESS) reply_.fail("doorbell_create: " + proto::describe_result(rc));
    return "hello " + std::to_string(driver_->get_context_id()) + " " +
           std::to_string(bell_.resource) + " " + std::to_string(dg_.resource);
  }

  std::string attach(std::istringstream& in) {
    std::string handle_arg;
    uint64_t produce = 0, consume = 0, seed_out = 0, seed_in = 0, chunk_seed = 0;
    in >> handle_arg >> produce >> consume >> seed_out >> seed_in >> chunk_seed >> session_;
    if (!in) reply_.fail("bad qp command");
    vmci_handle handle = parse_handle(handle_arg);
    const int rc =
        driver_->qpair_alloc(&qp_, &handle, produce, consume, VMCI_HOST_CONTEXT_ID, 0, 0);
    if (rc < VMCI_SUCCESS) reply_.fail("qpair_alloc " + handle_arg + ": " +
                                       proto::describe_result(rc));
    writer_ = std::thread([this, seed_out, chunk_seed] {
      const PumpOutcome out = pump_out(*qp_, seed_out, ~chunk_seed, out_);
      if (!out.ok() || out.peer_gone) {
        reply_.fail("stream to host: " + (out.ok() ? "QUEUEPAIR_NOTATTACHED" : out.error));
      }
      wrote_ = out.bytes;
    });
    reader_ = std::thread([this, seed_in, chunk_seed] {
      const PumpOutcome in = pump_in(*qp_, seed_in, chunk_seed, in_);
      if (!in.ok() || in.peer_gone) {
        reply_.fail("stream from host: " + (in.ok() ? "QUEUEPAIR_NOTATTACHED" : in.error));
      }
      read_ = in.bytes;
    });
    datagrams_ = std::thread([this] { send_datagrams(); });
    rings_thread_ = std::thread([this] { ring_host(); });
    return "attached";
  }

  std::string stop() {
    // The host rings this doorbell every millisecond or so: one callback
    // must have come by now, or soon.
    for (int i = 0; i < 2000 && callbacks_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (callbacks_ == 0) reply_.fail("no doorbell callback within 10 s of host ringing");
    for (int i = 0; i < 2000 && rings_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop_producers();
    return "stopped " + std::to_string(wrote_) + " " + std::to_string(sent_) + " " +
           std::to_string(no_resources_) + " " + std::to_string(rings_);
  }

  std::string drain(uint64_t bytes) {
    in_.target.store(bytes, std::memory_order_release);
    if (reader_.joinable()) reader_.join();
    if (read_ != bytes) {
      reply_.fail("read " + std::to_string(read_) + " of the host's " + std::to_string(bytes));
    }
    int rc = driver_->qpair_detach(&qp_);
    if (rc != VMCI_SUCCESS) reply_.fail("qpair_detach: " + proto::describe_result(rc));
    rc = driver_->doorbell_destroy(bell_);
    if (rc != VMCI_SUCCESS) reply_.fail("doorbell_destroy: " + proto::describe_result(rc));
    rc = driver_->datagram_destroy_handle(dg_);
    if (rc != VMCI_SUCCESS) reply_.fail("datagram_destroy_handle: " + proto::describe_result(rc));
    driver_.reset();
    return "done " + std::to_string(read_) + " " + std::to_string(callbacks_.load());
  }

 private:
  void stop_producers() {
    stop_ = true;
    out_.stop = true;
    for (auto* t : {&writer_, &datagrams_, &rings_thread_}) {
      if (t->joinable()) t->join();
    }
  }

  // Stamped datagrams of random sizes to the host's handle, as fast as the
  // host takes them: VMCI_ERROR_NO_RESOURCES (its pending cap) means retry.
  void send_datagrams() {
    std::mt19937_64 rng(rng_());
    std::vector<uint8_t> buf(sizeof(vmci_datagram) + 8192);
    auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
    dg->dst = parse_handle(options_.host_datagram);
    dg->src = dg_;
    uint64_t burst = 0;  // datagrams left before the next pause
    while (!stop_) {
      if (burst == 0) {
        // Bursts of up to 512 (about 300 KiB) overrun the pending cap
        // (139264 bytes) when the host falls behind; the pauses leave room
        // for the streams on a small machine.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        burst = 1 + rng() % 512;
      }
      --burst;
      const size_t size = rng() % 16 == 0 ? 8 + rng() % (8192 - 8) : 8 + rng() % 1017;
      dg->payload_size = size;
      testing::stamped_payload(datagram_sequence(session_, sent_),
                               reinterpret_cast<uint8_t*>(dg + 1), size);
      for (;;) {
        const int result = driver_->datagram_send(dg);
        if (result == static_cast<int>(sizeof(vmci_datagram) + size)) {
          ++sent_;
          break;
        }
        if (result != VMCI_ERROR_NO_RESOURCES) {
          reply_.fail("datagram_send of " + std::to_string(size) + " bytes: " +
                      proto::describe_result(result));
        }
        ++no_resources_;
        if (stop_) return;  // refused: it was not sent, and is not counted
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }

  // Bursts of rings of the host's doorbell.
  void ring_host() {
    const vmci_handle bell = parse_handle(options_.host_doorbell);
    while (!stop_) {
      for (int i = 0; i < 32; ++i) {
        const int rc = driver_->doorbell_notify(bell, VMCI_NO_PRIVILEGE_FLAGS);
        if (rc != VMCI_SUCCESS) reply_.fail("ringing the host: " + proto::describe_result(rc));
        ++rings_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  const GuestModeOptions& options_;
  Reply& reply_;
  std::mt19937_64 rng_;
  std::atomic<uint64_t> callbacks_{0};  // the doorbell callback uses it: before driver_
  std::unique_ptr<guest::Driver> driver_;
  vmci_handle dg_ = VMCI_INVALID_HANDLE;
  vmci_handle bell_ = VMCI_INVALID_HANDLE;
  std::unique_ptr<QueuePair> qp_;
  uint32_t session_ = 0;
  PumpControl out_, in_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> wrote_{0}, read_{0}, sent_{0}, no_resources_{0}, rings_{0};
  std::thread writer_, reader_, datagrams_, rings_thread_;
};

}  // namespace

int run_guest_mode(const GuestModeOptions& options) {
  Reply reply;
  std::mt19937_64 seeds(options.seed);
  std::unique_ptr<GuestSession> session;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "connect") {
      std::string cid;
      in >> cid;
      session = std::make_unique<GuestSession>(options, reply, seeds());
      reply.say(session->connect(cid == "-" ? VMCI_INVALID_ID
                                            : static_cast<vmci_id>(std::stoul(cid))));
    } else if (cmd == "qp" && session) {
      reply.say(session->attach(in));
    } else if (cmd == "stop" && session) {
      reply.say(session->stop());
    } else if (cmd == "drain" && session) {
      uint64_t bytes = 0;
      in >> bytes;
      const std::string done = session->drain(bytes);
      session.reset();
      reply.say(done);
    } else if (cmd == "exit") {
      return 0;
    } else {
      reply.fail("unexpected command: " + line);
    }
  }
  return 0;  // the soak went away
}

}  // namespace vmci::soak
