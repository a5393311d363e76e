#include "embedded/embedded_endpoint.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <thread>

#include "quiet_logger.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/datagram_lane.h"
#include "vmci/proto/wake_word.h"

namespace vmci::host {
namespace {

using namespace std::chrono_literals;

// Collects what callbacks saw.
class Inbox {
 public:
  void add(std::string item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
    changed_.notify_all();
  }
  std::vector<std::string> wait_for(size_t n, std::chrono::milliseconds timeout = 3s) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
    return items_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> items_;
};

std::vector<uint8_t> datagram(vmci_handle dst, vmci_handle src, std::string text) {
  return proto::make_datagram(dst, src, std::vector<uint8_t>(text.begin(), text.end()));
}

int send(Endpoint& ep, const std::vector<uint8_t>& dg) {
  return ep.datagram_send(reinterpret_cast<const vmci_datagram*>(dg.data()));
}

DatagramCallback recorder(Inbox& inbox) {
  return [&inbox](vmci_datagram* dg) {
    inbox.add(std::string(static_cast<char*>(VMCI_DG_PAYLOAD(dg)),
                          static_cast<size_t>(dg->payload_size)));
    return 0;
  };
}

class Embedded : public ::testing::Test {
 protected:
  LockedCore core{Limits{}, test_support::quiet_logger()};
};

TEST_F(Embedded, TwoHostEndpointsExchangeDatagramsInContext2) {
  EmbeddedEndpoint a(core), b(core);
  Inbox inbox;
  vmci_handle ha, hb;
  ASSERT_EQ(a.datagram_create_handle(VMCI_INVALID_ID, 0, 0, recorder(inbox), &ha), VMCI_SUCCESS);
  ASSERT_EQ(b.datagram_create_handle(4242, 0, 0, recorder(inbox), &hb), VMCI_SUCCESS);
  EXPECT_EQ(a.get_context_id(), 2u);
  EXPECT_EQ(send(a, datagram(hb, ha, "hi")), 26);
  EXPECT_EQ(inbox.wait_for(1), std::vector<std::string>{"hi"});
}

TEST_F(Embedded, HeldCallbacksStayPendingUntilReleased) {
  EmbeddedEndpoint a(core), b(core);
  Inbox inbox;
  vmci_handle ha, hb;
  a.datagram_create_handle(VMCI_INVALID_ID, 0, 0, recorder(inbox), &ha);
  b.datagram_create_handle(4242, 0, 0, recorder(inbox), &hb);
  b.hold_callbacks();
  ASSERT_EQ(send(a, datagram(hb, ha, "one")), 27);
  ASSERT_EQ(send(a, datagram(hb, ha, "two")), 27);
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(inbox.wait_for(1, 10ms).empty());
  EXPECT_EQ(core.with([](Hypervisor& c) { return c.stats().pending_datagram_bytes; }), 54u);
  b.release_callbacks();
  EXPECT_EQ(inbox.wait_for(2), (std::vector<std::string>{"one", "two"}));
  for (int i = 0; i < 100 && core.with([](Hypervisor& c) { return c.stats().pending_datagrams; });
       ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(core.with([](Hypervisor& c) { return c.stats().pending_datagrams; }), 0u);
}

TEST_F(Embedded, DestroyWaitsForARunningCallback) {
  EmbeddedEndpoint a(core), b(core);
  std::atomic<bool> in_callback{false}, finished{false};
  vmci_handle ha, hb;
  a.datagram_create_handle(
      VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &ha);
  b.datagram_create_handle(
      4242, 0, 0,
      [&](vmci_datagram*) {
        in_callback = true;
        std::this_thread::sleep_for(100ms);
        finished = true;
        return 0;
      },
      &hb);
  ASSERT_EQ(send(a, datagram(hb, ha, "x")), 25);
  while (!in_callback) std::this_thread::yield();
  EXPECT_EQ(b.datagram_destroy_handle(hb), VMCI_SUCCESS);
  EXPECT_TRUE(finished);
}

TEST_F(Embedded, ACallbackMayDestroyItsOwnHandle) {
  EmbeddedEndpoint a(core), b(core);
  Inbox inbox;
  vmci_handle ha, hb;
  a.datagram_create_handle(VMCI_INVALID_ID, 0, 0, recorder(inbox), &ha);
  b.datagram_create_handle(
      4242, 0, 0,
      [&](vmci_datagram* dg) {
        inbox.add(std::to_string(b.datagram_destroy_handle(dg->dst)));
        return 0;
      },
      &hb);
  ASSERT_EQ(send(a, datagram(hb, ha, "x")), 25);
  EXPECT_EQ(inbox.wait_for(1), std::vector<std::string>{"0"});
  EXPECT_EQ(send(a, datagram(hb, ha, "x")), VMCI_ERROR_INVALID_RESOURCE);
}

// Mappings of pairs' queues (hostpeer's memfds) in this process.
int queue_mappings() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/memfd:vmci-queue-pair (deleted)") != std::string::npos) ++n;
  }
  return n;
}

TEST_F(Embedded, APairDetachedByACallbackIsUnmappedOnceTheCallbackReturns) {
  EmbeddedEndpoint a(core), b(core);
  std::unique_ptr<QueuePair> qp;
  vmci_handle pair = VMCI_INVALID_HANDLE;
  ASSERT_EQ(a.qpair_alloc(&qp, &pair, 4096, 4096, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  const int mapped = queue_mappings();
  ASSERT_GE(mapped, 1);
  Inbox inbox;
  vmci_handle ha, hb;
  ASSERT_EQ(a.datagram_create_handle(
                4242, 0, 0,
                [&](vmci_datagram*) {
                  const int status = a.qpair_detach(&qp);
                  inbox.add(std::to_string(status) + (qp ? " held" : " null") + " " +
                            std::to_string(queue_mappings()));
                  return 0;
                },
                &ha),
            VMCI_SUCCESS);
  ASSERT_EQ(b.datagram_create_handle(VMCI_INVALID_ID, 0, 0, recorder(inbox), &hb), VMCI_SUCCESS);
  ASSERT_EQ(send(b, datagram(ha, hb, "detach")), 30);
  // Detached and null at once; still mapped while the callback runs.
  EXPECT_EQ(inbox.wait_for(1), std::vector<std::string>{"0 null " + std::to_string(mapped)});
  for (int i = 0; i < 400 && queue_mappings() != mapped - 1; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(queue_mappings(), mapped - 1);
  EXPECT_EQ(core.with([](Hypervisor& c) { return c.stats().queue_pairs; }), 0u);
}

TEST_F(Embedded, APairDetachedOutsideCallbacksIsUnmappedAtOnce) {
  EmbeddedEndpoint a(core);
  std::unique_ptr<QueuePair> qp;
  vmci_handle pair = VMCI_INVALID_HANDLE;
  ASSERT_EQ(a.qpair_alloc(&qp, &pair, 4096, 4096, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  const int mapped = queue_mappings();
  EXPECT_EQ(a.qpair_detach(&qp), VMCI_SUCCESS);
  EXPECT_FALSE(qp);
  EXPECT_EQ(queue_mappings(), mapped - 1);
}

TEST_F(Embedded, SendChecksArguments) {
  EmbeddedEndpoint a(core);
  EXPECT_EQ(a.datagram_send(nullptr), VMCI_ERROR_INVALID_ARGS);
  vmci_datagram huge{VMCI_MAKE_HANDLE(2, 1), VMCI_MAKE_HANDLE(2, 2), 1ull << 40};
  EXPECT_EQ(a.datagram_send(&huge), VMCI_ERROR_INVALID_ARGS);
  vmci_handle h;
  EXPECT_EQ(a.datagram_create_handle(1, 0, 0, DatagramCallback{}, &h), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(a.datagram_create_handle(
                1, 0, 0, [](vmci_datagram*) { return 0; }, nullptr),
            VMCI_ERROR_INVALID_ARGS);
}

TEST_F(Embedded, ReceivesCtxRemovedWhenAGuestGoes) {
  EmbeddedEndpoint host(core);
  Inbox inbox;
  vmci_id sub;
  ASSERT_EQ(host.event_subscribe(
                VMCI_EVENT_CTX_REMOVED,
                [&](vmci_id id, vmci_event_data* ed) {
                  auto* p = static_cast<vmci_event_payload_context*>(vmci_event_data_payload(ed));
                  inbox.add(std::to_string(id) + ":" + std::to_string(p->context_id));
                },
                &sub),
            VMCI_SUCCESS);
  class NullSink : public PeerSink {
    void deliver(uint32_t, std::vector<uint8_t>) override {}
    void ring(uint64_t) override {}
    void grant(const proto::RingGrantBody&, const RingChannelFile&, bool) override {}
    void close_ring_channel(uint32_t, proto::RingSide) override {}
  } sink;
  const PeerId vm = core.with([&](Hypervisor& c) {
    return c.admit({proto::Role::kGuest, 33, 0, false}, &sink).peer;
  });
  core.with([&](Hypervisor& c) { c.remove(vm); });
  EXPECT_EQ(inbox.wait_for(1), std::vector<std::string>{"1:33"});
  EXPECT_EQ(host.event_unsubscribe(sub), VMCI_SUCCESS);
  EXPECT_EQ(host.event_unsubscribe(sub), VMCI_ERROR_NOT_FOUND);
}

// A guest that forges its source in 100000 records of its datagram lane
// makes the endpoint log a burst of lines, then, when the guest goes and
// its lane closes, one line that counts the rest.
TEST_F(Embedded, AGuestForgingItsLaneIsLoggedABurstThenOneCountWhenItGoes) {
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  auto log = std::make_shared<spdlog::logger>("endpoint", lines);
  log->set_pattern("%v");
  EmbeddedEndpoint host(core, log);
  Inbox inbox;
  vmci_handle handle;
  ASSERT_EQ(host.datagram_create_handle(7, 0, 0, recorder(inbox), &handle), VMCI_SUCCESS);
  class GrantSink : public PeerSink {
   public:
    void deliver(uint32_t, std::vector<uint8_t>) override {}
    void ring(uint64_t) override {}
    void grant(const proto::RingGrantBody& body, const RingChannelFile& memory, bool) override {
      if (static_cast<proto::RingSide>(body.side) != proto::RingSide::kRinger) return;
      grant_body = body;
      channel = memory.channel();
    }
    void close_ring_channel(uint32_t, proto::RingSide) override {}
    proto::RingGrantBody grant_body{};
    std::shared_ptr<proto::RingChannel> channel;
  } guest;
  const PeerId vm = core.with([&](Hypervisor& c) {
    return c.admit({proto::Role::kGuest, 33, 0, false, /*rings_through_channels=*/true}, &guest)
        .peer;
  });
  // Routed through hostpeer, which grants the guest a lane to the handle.
  const auto first = datagram(handle, VMCI_MAKE_HANDLE(33, 1), "first");
  ASSERT_EQ(core.with([&](Hypervisor& c) { return c.send(vm, first); }), 29);
  ASSERT_TRUE(guest.channel);
  proto::LaneWriter lane(guest.channel.get());
  const auto put = [&](vmci_id src_cid, const char* text) {
    vmci_datagram h{};
    h.dst = handle;
    h.src = VMCI_MAKE_HANDLE(src_cid, 1);
    h.payload_size = std::strlen(text);
    const std::span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(text), h.payload_size);
    for (;;) {
      switch (lane.send(guest.grant_body.slot, guest.grant_body.generation, h, payload,
                        guest.grant_body.lane_cap)) {
        case proto::LaneSend::kSent:
          return true;
        case proto::LaneSend::kSentWakeNeeded:
          proto::wake(&guest.channel->wake);
          return true;
        case proto::LaneSend::kFull:
          std::this_thread::yield();  // the endpoint is draining it
          break;
        case proto::LaneSend::kRefused:
          return false;
      }
    }
  };
  constexpr int kForged = 100000;
  for (int i = 0; i < kForged; ++i) ASSERT_TRUE(put(34, "forged"));
  ASSERT_TRUE(put(33, "last"));  // after every forged one: when it is here, they were read
  ASSERT_EQ(inbox.wait_for(2, 30s), (std::vector<std::string>{"first", "last"}));
  const auto count = [&](const std::string& text) {
    size_t n = 0;
    for (const std::string& line : lines->last_formatted()) {
      n += line.find(text) != std::string::npos;
    }
    return n;
  };
  const size_t burst = proto::LogRateLimitOptions{}.burst;
  EXPECT_EQ(count("names source (34:1)"), burst);
  core.with([&](Hypervisor& c) { c.remove(vm); });  // its lane closes
  const std::string summary = "host endpoint: " + std::to_string(kForged - burst) +
                              " more from context 33 (forged source) not logged";
  for (int i = 0; i < 3000 && count(summary) == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(count(summary), 1u) << "no summary";
  EXPECT_EQ(lines->last_formatted().size(), burst + 1);
}

TEST_F(Embedded, DestroyingTheEndpointFreesItsHandles) {
  {
    EmbeddedEndpoint a(core);
    vmci_handle h;
    a.datagram_create_handle(
        4242, 0, 0, [](vmci_datagram*) { return 0; }, &h);
    EXPECT_EQ(core.with([](Hypervisor& c) { return c.stats().host_datagram_handles; }), 1u);
  }
  const Stats s = core.with([](Hypervisor& c) { return c.stats(); });
  EXPECT_EQ(s.host_datagram_handles, 0u);
  EXPECT_EQ(s.host_connections, 0u);
}

}  // namespace
}  // namespace vmci::host
