#include "core/hypervisor.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>

#include "core/request_capture.h"
#include "quiet_logger.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"
#include "vmci/proto/queue.h"
#include "vmci/proto/queue_pair_hypercalls.h"

namespace vmci::host {
namespace {

class RecordingSink : public PeerSink {
 public:
  void deliver(uint32_t id, std::vector<uint8_t> datagram) override {
    deliveries.push_back({id, std::move(datagram)});
  }
  void ring(uint64_t index) override { rings.push_back(index); }
  void grant(const proto::RingGrantBody& grant, const RingChannelFile& memory,
             bool first) override {
    grants.push_back({grant, memory.channel(), first});
  }
  void close_ring_channel(uint32_t channel_id, proto::RingSide side) override {
    closed_channels.push_back({channel_id, static_cast<uint8_t>(side), {}});
  }
  std::vector<uint64_t> rings;
  struct Grant {
    proto::RingGrantBody body;
    std::shared_ptr<proto::RingChannel> channel;
    bool first;
  };
  std::vector<Grant> grants;
  std::vector<proto::RingChannelClosedBody> closed_channels;
  struct Item {
    uint32_t id;
    std::vector<uint8_t> datagram;
  };
  std::vector<Item> deliveries;
};

class Core : public ::testing::Test {
 protected:
  explicit Core(Limits limits = {}) : core(limits, test_support::quiet_logger()) {}

  PeerId guest(vmci_id cid = VMCI_INVALID_ID, uint32_t priv = 0, RecordingSink* sink = nullptr) {
    const auto a = core.admit({proto::Role::kGuest, cid, priv, false}, sink ? sink : &spare);
    EXPECT_EQ(a.status, VMCI_SUCCESS) << a.reason;
    return a.peer;
  }
  PeerId host(RecordingSink* sink) {
    const auto a = core.admit({proto::Role::kHost, VMCI_INVALID_ID, 0, true}, sink);
    EXPECT_EQ(a.status, VMCI_SUCCESS) << a.reason;
    return a.peer;
  }
  vmci_handle handle(PeerId host_peer, vmci_id rid, uint32_t priv = 0, uint32_t flags = 0) {
    const auto r = core.create_host_handle(host_peer, rid, flags, priv);
    EXPECT_EQ(r.status, VMCI_SUCCESS);
    return r.handle;
  }
  int64_t send(PeerId from, vmci_handle src, vmci_handle dst, size_t payload = 4) {
    return core.send(from, proto::make_datagram(dst, src, std::vector<uint8_t>(payload, 0x5a)));
  }
  int64_t hypercall(PeerId from, std::vector<uint8_t> payload, uint32_t rid) {
    return core.send(from,
                     proto::make_datagram(VMCI_MAKE_HANDLE(0, rid), VMCI_ANON_SRC_HANDLE, payload));
  }

  Hypervisor core;
  RecordingSink spare;
};

TEST_F(Core, Context_AssignedIdsStartAt16) {
  EXPECT_EQ(core.admit({proto::Role::kGuest, VMCI_INVALID_ID, 0, false}, &spare).cid, 16u);
  EXPECT_EQ(core.admit({proto::Role::kGuest, VMCI_INVALID_ID, 0, false}, &spare).cid, 17u);
}

TEST_F(Core, Context_AssignedIdsSkipIdsInUse) {
  guest(16);
  guest(17);
  EXPECT_EQ(core.admit({proto::Role::kGuest, VMCI_INVALID_ID, 0, false}, &spare).cid, 18u);
}

TEST_F(Core, Context_RequestedIdInUseIsRefused) {
  guest(77);
  const auto a = core.admit({proto::Role::kGuest, 77, 0, false}, &spare);
  EXPECT_EQ(a.status, VMCI_ERROR_ALREADY_EXISTS);
  EXPECT_NE(a.reason.find("77"), std::string::npos);
}

TEST_F(Core, Context_RemovedIdCanBeRequestedAgain) {
  const PeerId vm = guest(77);
  core.remove(vm);
  EXPECT_EQ(core.admit({proto::Role::kGuest, 77, 0, false}, &spare).status, VMCI_SUCCESS);
}

TEST_F(Core, Context_ReservedIdsAreRefused) {
  for (vmci_id cid : {0u, 1u, 2u}) {
    EXPECT_EQ(core.admit({proto::Role::kGuest, cid, 0, false}, &spare).status,
              VMCI_ERROR_INVALID_ARGS);
  }
  EXPECT_EQ(core.admit({proto::Role::kGuest, 3, 0, false}, &spare).status, VMCI_SUCCESS);
}

TEST_F(Core, Context_HostRoleNeedsTrust) {
  const auto a = core.admit({proto::Role::kHost, VMCI_INVALID_ID, 0, false}, &spare);
  EXPECT_EQ(a.status, VMCI_ERROR_NO_ACCESS);
  EXPECT_FALSE(a.reason.empty());
}

TEST_F(Core, Context_GuestPrivilegesAreZeroOrRestricted) {
  EXPECT_EQ(
      core.admit({proto::Role::kGuest, VMCI_INVALID_ID, VMCI_PRIVILEGE_FLAG_TRUSTED, false}, &spare)
          .status,
      VMCI_ERROR_INVALID_ARGS);
}

TEST_F(Core, Context_GuestRemovalSendsCtxRemovedToEveryHostConnection) {
  RecordingSink h1, h2;
  host(&h1);
  host(&h2);
  const PeerId vm = guest(42);
  core.remove(vm);
  for (RecordingSink* sink : {&h1, &h2}) {
    ASSERT_EQ(sink->deliveries.size(), 1u);
    vmci_event_context ev;
    ASSERT_EQ(sink->deliveries[0].datagram.size(), sizeof ev);
    std::memcpy(&ev, sink->deliveries[0].datagram.data(), sizeof ev);
    EXPECT_EQ(ev.msg.event_data.event, unsigned{VMCI_EVENT_CTX_REMOVED});
    EXPECT_EQ(ev.payload.context_id, 42u);
    EXPECT_EQ(ev.msg.hdr.dst.context, unsigned{VMCI_HOST_CONTEXT_ID});
  }
  EXPECT_EQ(core.stats().events_sent, 2u);
}

TEST_F(Core, Context_HostConnectionCloseSendsNoCtxRemoved) {
  RecordingSink h1, h2;
  host(&h1);
  const PeerId other = host(&h2);
  core.remove(other);
  EXPECT_TRUE(h1.deliveries.empty());
}

TEST_F(Core, Context_HostConnectionCloseFreesItsHandles) {
  RecordingSink h1;
  const PeerId hp = host(&h1);
  handle(hp, 4242);
  EXPECT_EQ(core.stats().host_datagram_handles, 1u);
  core.remove(hp);
  EXPECT_EQ(core.stats().host_datagram_handles, 0u);
  const PeerId vm = guest(16);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(2, 4242)),
            VMCI_ERROR_INVALID_RESOURCE);
}

TEST_F(Core, Hypercall_Item31_ResourcesQueryReturnsBitMask) {
  const PeerId vm = guest();
  auto query = [](std::vector<uint32_t> rids) {
    std::vector<uint8_t> p(8 + 4 * rids.size());
    const uint32_t n = static_cast<uint32_t>(rids.size());
    std::memcpy(p.data(), &n, 4);
    std::memcpy(p.data() + 8, rids.data(), 4 * rids.size());
    return p;
  };
  EXPECT_EQ(hypercall(vm, query({VMCI_GET_CONTEXT_ID}), VMCI_RESOURCES_QUERY), 1);
  EXPECT_EQ(
      hypercall(vm, query({VMCI_SET_NOTIFY_BITMAP, VMCI_RESOURCES_QUERY, VMCI_QUEUEPAIR_ALLOC}),
                VMCI_RESOURCES_QUERY),
      0b110);
}

TEST_F(Core, Hypercall_GetContextIdAnswersTheSendersId) {
  const PeerId vm = guest(300);
  EXPECT_EQ(hypercall(vm, {}, VMCI_GET_CONTEXT_ID), 300);
}

TEST_F(Core, Hypercall_ObsoleteAndUnknownResources) {
  const PeerId vm = guest();
  for (uint32_t rid : {6u, 7u, 8u, 9u}) EXPECT_EQ(hypercall(vm, {}, rid), VMCI_ERROR_OBSOLETE);
  for (uint32_t rid : {2u, 12u, 99u}) {
    EXPECT_EQ(hypercall(vm, {}, rid), VMCI_ERROR_INVALID_RESOURCE) << rid;
  }
  // Implemented, but these messages are malformed.
  for (uint32_t rid : {3u, 4u, 5u, 10u, 11u}) {
    EXPECT_EQ(hypercall(vm, {}, rid), VMCI_ERROR_INVALID_ARGS) << rid;
  }
}

// Linux's vmci_route on a host with no guest device, before
// dg_dispatch_as_host looks at the source.
TEST_F(Core, Datagram_HostRoutesFirst) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  const vmci_handle unknown_src = VMCI_MAKE_HANDLE(2, 5555);
  guest(16);
  struct Case {
    vmci_handle src, dst;
    int64_t result;
  } const cases[] = {
      {src, VMCI_MAKE_HANDLE(0, VMCI_GET_CONTEXT_ID), VMCI_ERROR_DEVICE_NOT_FOUND},
      {unknown_src, VMCI_MAKE_HANDLE(0, 1), VMCI_ERROR_DEVICE_NOT_FOUND},
      {unknown_src, VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 1), VMCI_ERROR_INVALID_ARGS},
      {unknown_src, VMCI_MAKE_HANDLE(99, 1), VMCI_ERROR_DST_UNREACHABLE},
      {VMCI_MAKE_HANDLE(17, src.resource), VMCI_MAKE_HANDLE(16, 1), VMCI_ERROR_DST_UNREACHABLE},
      {VMCI_MAKE_HANDLE(16, src.resource), VMCI_MAKE_HANDLE(16, 1), VMCI_ERROR_NO_ACCESS},
      {unknown_src, VMCI_MAKE_HANDLE(16, 1), VMCI_ERROR_INVALID_ARGS},
      {src, VMCI_MAKE_HANDLE(16, 1), 28},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(proto::to_string(c.src) + " -> " + proto::to_string(c.dst));
    EXPECT_EQ(send(hp, c.src, c.dst), c.result);
  }
}

TEST_F(Core, Datagram_Item22_SuccessReturnsDatagramSize) {
  RecordingSink h;
  const PeerId hp = host(&h);
  handle(hp, 4242);
  const PeerId vm = guest(16);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(2, 4242), 100), 124);
  ASSERT_EQ(h.deliveries.size(), 1u);
  EXPECT_EQ(h.deliveries[0].datagram.size(), 124u);
}

TEST_F(Core, Datagram_Item21_GuestToUnknownHostResourceIsInvalidResource) {
  const PeerId vm = guest(16);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(2, 9999)),
            VMCI_ERROR_INVALID_RESOURCE);
}

TEST_F(Core, Datagram_Item12_VmToVmIsDstUnreachable) {
  const PeerId vm = guest(16);
  guest(17);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(17, 1024)),
            VMCI_ERROR_DST_UNREACHABLE);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(99, 1024)),
            VMCI_ERROR_DST_UNREACHABLE);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(1, 1)),
            VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(Core, Datagram_SourceSpoofingIsNoAccess) {
  RecordingSink h;
  handle(host(&h), 4242);
  const PeerId vm = guest(16);
  guest(17);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(17, 1024), VMCI_MAKE_HANDLE(2, 4242)), VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(2, 4242), VMCI_MAKE_HANDLE(2, 4242)), VMCI_ERROR_NO_ACCESS);
  EXPECT_TRUE(h.deliveries.empty());
}

TEST_F(Core, Datagram_InvalidDestinationContextIsInvalidArgs) {
  const PeerId vm = guest(16);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 1)),
            VMCI_ERROR_INVALID_ARGS);
}

TEST_F(Core, Datagram_Item20_MalformedOrOversizedIsInvalidArgs) {
  const PeerId vm = guest(16);
  auto dg = proto::make_datagram(VMCI_MAKE_HANDLE(2, 1), VMCI_MAKE_HANDLE(16, 1024), {});
  dg.push_back(0);  // one byte more than payload_size says
  EXPECT_EQ(core.send(vm, dg), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(2, 1), 69609),
            VMCI_ERROR_INVALID_ARGS);
}

TEST_F(Core, Datagram_HostToGuestIsQueuedForTheGuest) {
  RecordingSink h, g;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  EXPECT_EQ(src.resource, 1024u);
  guest(16, 0, &g);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 7777)), 28);  // unknown guest rids: still queued
  EXPECT_EQ(g.deliveries.size(), 1u);
}

TEST_F(Core, Datagram_HostSourceMustBeItsOwnHandle) {
  RecordingSink h1, h2;
  const PeerId a = host(&h1);
  const PeerId b = host(&h2);
  const vmci_handle mine = handle(a, 4242);
  guest(16);
  EXPECT_EQ(send(b, mine, VMCI_MAKE_HANDLE(16, 1)), VMCI_ERROR_NO_HANDLE);
  EXPECT_EQ(send(b, VMCI_MAKE_HANDLE(2, 5555), VMCI_MAKE_HANDLE(16, 1)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(send(a, mine, VMCI_MAKE_HANDLE(16, 1)), 28);
}

TEST_F(Core, Datagram_AnyContextSourceIsSentAsTheHost) {
  RecordingSink h, g;
  const PeerId hp = host(&h);
  const vmci_handle any = handle(hp, VMCI_INVALID_ID, 0, VMCI_FLAG_ANYCID_DG_HND);
  EXPECT_EQ(any.context, VMCI_INVALID_ID);
  guest(16, 0, &g);
  ASSERT_EQ(send(hp, any, VMCI_MAKE_HANDLE(16, 1)), 28);
  EXPECT_EQ(proto::header_of(g.deliveries[0].datagram).src.context, 2u);
}

TEST_F(Core, Datagram_RestrictedGuestNeedsATrustedHostHandle) {
  RecordingSink h;
  const PeerId hp = host(&h);
  handle(hp, 4242);
  handle(hp, 4343, VMCI_PRIVILEGE_FLAG_TRUSTED);
  const PeerId vm = guest(16, VMCI_PRIVILEGE_FLAG_RESTRICTED);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 4242)), VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 4343)), 28);
}

TEST_F(Core, Datagram_UntrustedHostHandleCannotReachARestrictedGuest) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle plain = handle(hp, 4242);
  const vmci_handle trusted = handle(hp, 4343, VMCI_PRIVILEGE_FLAG_TRUSTED);
  guest(16, VMCI_PRIVILEGE_FLAG_RESTRICTED);
  EXPECT_EQ(send(hp, plain, VMCI_MAKE_HANDLE(16, 1)), VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(send(hp, trusted, VMCI_MAKE_HANDLE(16, 1)), 28);
}

TEST_F(Core, Datagram_GuestToItselfIsQueuedBack) {
  RecordingSink g;
  const PeerId vm = guest(16, 0, &g);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1024), VMCI_MAKE_HANDLE(16, 1024)), 28);
  EXPECT_EQ(g.deliveries.size(), 1u);
}

class SmallCap : public Core {
 protected:
  SmallCap() : Core(Limits{.max_pending_datagram_bytes = 1000}) {}
};

TEST_F(Core, Datagram_Item34_PendingCapRefusesWithNoResources) {
  RecordingSink h, g;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  const PeerId vm = guest(16, 0, &g);
  // 139264 = 2 * 69632: the second full-size datagram reaches the cap.
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 69608), 69632);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 69608), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 69608 - 1), 69631);
  EXPECT_EQ(core.stats().pending_datagram_bytes, 69632u + 69631u);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 0), VMCI_ERROR_NO_RESOURCES);
  core.delivered(vm, g.deliveries[0].id);                           // 69631 bytes still pending
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 69608), 69632);  // 139263 < 139264
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 0), VMCI_ERROR_NO_RESOURCES);
}

TEST_F(SmallCap, Datagram_Item34_EventsGetExtraHeadroom) {
  RecordingSink h;
  const PeerId hp = host(&h);
  handle(hp, 4242);
  const PeerId vm = guest(16);
  // Fill the host connection's pending bytes to the cap with guest datagrams.
  while (send(vm, VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 4242), 76) > 0) {
  }
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 4242), 76),
            VMCI_ERROR_NO_RESOURCES);
  // An event (CTX_REMOVED) still gets through.
  const size_t before = h.deliveries.size();
  core.remove(guest(17));
  EXPECT_EQ(h.deliveries.size(), before + 1);
}

TEST_F(SmallCap, Datagram_PendingCapIsPerReceiver) {
  RecordingSink h, g1, g2;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  guest(16, 0, &g1);
  guest(17, 0, &g2);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 900), 924);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 100), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(17, 1), 900), 924);
}

TEST_F(Core, Context_RemovedGuestsPendingDatagramsAreDiscarded) {
  RecordingSink h, g;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  const PeerId vm = guest(16, 0, &g);
  ASSERT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 10), 34);
  core.remove(vm);
  // What stays pending is the host's CTX_REMOVED, not the guest's datagram.
  ASSERT_EQ(h.deliveries.size(), 1u);
  EXPECT_EQ(core.stats().pending_datagrams, 1u);
  EXPECT_EQ(core.stats().pending_datagram_bytes, h.deliveries[0].datagram.size());
  core.delivered(vm, g.deliveries[0].id);  // too late: ignored
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1)), VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(Core, HostHandle_ExplicitIdTakenByAnotherConnectionIsDuplicateEntry) {
  // Context 2 is one table shared by every host connection (FreeBSD's
  // hashtable answers VMCI_ERROR_DUPLICATE_ENTRY; Linux would say
  // VMCI_ERROR_ALREADY_EXISTS).
  RecordingSink h1, h2;
  const PeerId a = host(&h1);
  const PeerId b = host(&h2);
  handle(a, 4242);
  EXPECT_EQ(core.create_host_handle(b, 4242, 0, 0).status, VMCI_ERROR_DUPLICATE_ENTRY);
  EXPECT_EQ(core.create_host_handle(b, 4242, VMCI_FLAG_ANYCID_DG_HND, 0).status,
            VMCI_ERROR_DUPLICATE_ENTRY);
}

TEST_F(Core, HostHandle_DynamicIdsSkipIdsInUse) {
  RecordingSink h;
  const PeerId hp = host(&h);
  handle(hp, 1024);
  handle(hp, 1025);
  EXPECT_EQ(handle(hp, VMCI_INVALID_ID).resource, 1026u);
}

TEST_F(Core, Datagram_GuestReachesAnAnyContextHostHandle) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle any = handle(hp, 4242, 0, VMCI_FLAG_ANYCID_DG_HND);
  EXPECT_EQ(any.context, VMCI_INVALID_ID);
  const PeerId vm = guest(16);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 4242)), 28);
  EXPECT_EQ(h.deliveries.size(), 1u);
}

TEST_F(Core, Datagram_HostConnectionsReachEachOthersHandlesInContext2) {
  RecordingSink h1, h2;
  const PeerId a = host(&h1);
  const PeerId b = host(&h2);
  const vmci_handle from = handle(a, VMCI_INVALID_ID);
  handle(b, 4242);
  EXPECT_EQ(send(a, from, VMCI_MAKE_HANDLE(2, 4242)), 28);
  EXPECT_TRUE(h1.deliveries.empty());
  EXPECT_EQ(h2.deliveries.size(), 1u);
  EXPECT_EQ(send(a, from, VMCI_MAKE_HANDLE(2, 9999)), VMCI_ERROR_INVALID_RESOURCE);
}

TEST_F(Core, Datagram_HostSourceContextMustBeTheHosts) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, 4242);
  guest(16);
  EXPECT_EQ(send(hp, VMCI_MAKE_HANDLE(16, src.resource), VMCI_MAKE_HANDLE(16, 1)),
            VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(send(hp, VMCI_MAKE_HANDLE(0, 0), VMCI_MAKE_HANDLE(16, 1)), VMCI_ERROR_NO_ACCESS);
}

TEST_F(Core, Datagram_HostToWellKnownContextIsDstUnreachable) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  EXPECT_EQ(send(hp, src, VMCI_MAKE_HANDLE(VMCI_WELL_KNOWN_CONTEXT_ID, 1)),
            VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(SmallCap, Datagram_Item34_EventHeadroomIs1024TimesHeaderPlusLargestEvent) {
  RecordingSink h;
  host(&h);
  uint64_t event_size = 0;
  for (vmci_id cid = 100;; ++cid) {  // CTX_REMOVED events until one is refused
    const size_t before = h.deliveries.size();
    core.remove(guest(cid));
    if (h.deliveries.size() == before) break;
    event_size = h.deliveries.back().datagram.size();
  }
  const uint64_t limit = 1000 + 1024 * (24 + sizeof(vmci_event_data_max));
  const uint64_t pending = core.stats().pending_datagram_bytes;
  EXPECT_LT(pending, limit);
  EXPECT_GE(pending + event_size, limit);
}

TEST_F(Core, Datagram_UnknownAcknowledgementsAreIgnored) {
  RecordingSink g, h;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  const PeerId vm = guest(16, 0, &g);
  ASSERT_EQ(send(hp, src, VMCI_MAKE_HANDLE(16, 1), 10), 34);
  core.delivered(vm, 12345);
  core.delivered(vm, g.deliveries[0].id);
  core.delivered(vm, g.deliveries[0].id);  // twice: no underflow
  EXPECT_EQ(core.stats().pending_datagram_bytes, 0u);
}

TEST_F(Core, HostHandle_CreationRules) {
  RecordingSink h;
  const PeerId hp = host(&h);
  EXPECT_EQ(core.create_host_handle(hp, 1, VMCI_FLAG_WELLKNOWN_DG_HND, 0).status,
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(core.create_host_handle(hp, 1, 0, 4).status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(core.create_host_handle(hp, 7, 0, 0).status, VMCI_SUCCESS);  // reserved ids allowed
  EXPECT_EQ(core.create_host_handle(hp, 7, 0, 0).status, VMCI_ERROR_DUPLICATE_ENTRY);
  EXPECT_EQ(core.create_host_handle(hp, VMCI_INVALID_ID, 0, 0).handle.resource, 1024u);
  EXPECT_EQ(core.create_host_handle(hp, VMCI_INVALID_ID, 0, 0).handle.resource, 1025u);
  const PeerId vm = guest();
  EXPECT_EQ(core.create_host_handle(vm, 5000, 0, 0).status, VMCI_ERROR_NO_ACCESS);
}

TEST_F(Core, HostHandle_LimitPerConnection) {
  Hypervisor small(Limits{.max_host_datagram_handles = 2}, test_support::quiet_logger());
  RecordingSink h;
  const PeerId hp = small.admit({proto::Role::kHost, VMCI_INVALID_ID, 0, true}, &h).peer;
  EXPECT_EQ(small.create_host_handle(hp, VMCI_INVALID_ID, 0, 0).status, VMCI_SUCCESS);
  EXPECT_EQ(small.create_host_handle(hp, VMCI_INVALID_ID, 0, 0).status, VMCI_SUCCESS);
  EXPECT_EQ(small.create_host_handle(hp, VMCI_INVALID_ID, 0, 0).status, VMCI_ERROR_NO_RESOURCES);
}

TEST_F(Core, HostHandle_DestroyOnlyYourOwn) {
  RecordingSink h1, h2;
  const PeerId a = host(&h1);
  const PeerId b = host(&h2);
  const vmci_handle mine = handle(a, 4242);
  EXPECT_EQ(core.destroy_host_handle(b, mine).status, VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(core.destroy_host_handle(a, VMCI_INVALID_HANDLE).status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(core.destroy_host_handle(a, mine).status, VMCI_SUCCESS);
  EXPECT_EQ(core.destroy_host_handle(a, mine).status, VMCI_ERROR_NOT_FOUND);
}

// Linux's resource lookup: a stored or a looked-up context of
// VMCI_INVALID_ID matches any context.
TEST_F(Core, HostHandle_DestroyFindsAnyContextHandlesByEitherContext) {
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle any = handle(hp, 5000, 0, VMCI_FLAG_ANYCID_DG_HND);
  ASSERT_EQ(any.context, VMCI_INVALID_ID);
  EXPECT_EQ(core.destroy_host_handle(hp, VMCI_MAKE_HANDLE(17, 5000)).status, VMCI_SUCCESS);
  const vmci_handle plain = handle(hp, 5001);
  const HandleResult r = core.destroy_host_handle(hp, VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 5001));
  EXPECT_EQ(r.status, VMCI_SUCCESS);
  EXPECT_TRUE(proto::same_handle(r.handle, plain));  // as it was stored
  handle(hp, 5002);
  EXPECT_EQ(core.destroy_host_handle(hp, VMCI_MAKE_HANDLE(17, 5002)).status,
            VMCI_ERROR_NOT_FOUND);
}

// Linux's vmci_doorbell_notify: the arguments, vmci_route, then
// vmci_ctx_notify_dbell.
TEST_F(Core, Doorbell_HostNotifyRoutesFirst) {
  RecordingSink h;
  const PeerId hp = host(&h);
  guest(16);
  struct Case {
    vmci_handle dst;
    uint32_t priv;
    int result;
  } const cases[] = {
      {VMCI_INVALID_HANDLE, 0, VMCI_ERROR_INVALID_ARGS},
      {VMCI_MAKE_HANDLE(16, 1024), 4, VMCI_ERROR_INVALID_ARGS},
      {VMCI_MAKE_HANDLE(VMCI_INVALID_ID, 1024), 0, VMCI_ERROR_INVALID_ARGS},
      {VMCI_MAKE_HANDLE(0, 1024), 0, VMCI_ERROR_DEVICE_NOT_FOUND},
      {VMCI_MAKE_HANDLE(99, 1024), 0, VMCI_ERROR_DST_UNREACHABLE},
      {VMCI_MAKE_HANDLE(16, 1024), 0, VMCI_ERROR_NOT_FOUND},
      {VMCI_MAKE_HANDLE(2, 1024), 0, VMCI_ERROR_NOT_FOUND},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(proto::to_string(c.dst));
    EXPECT_EQ(core.notify_doorbell(hp, c.dst, c.priv), c.result);
  }
}

TEST_F(Core, Context_UpdateContextIdSendsCtxIdUpdateToTheGuest) {
  RecordingSink g;
  guest(40, 0, &g);
  guest(41);
  EXPECT_EQ(core.update_context_id(99, 50), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(core.update_context_id(40, 41), VMCI_ERROR_ALREADY_EXISTS);
  EXPECT_EQ(core.update_context_id(40, 2), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(core.update_context_id(40, VMCI_INVALID_ID), VMCI_ERROR_INVALID_ARGS);
  ASSERT_EQ(core.update_context_id(40, 50), VMCI_SUCCESS);
  ASSERT_EQ(g.deliveries.size(), 1u);
  vmci_event_context ev;
  std::memcpy(&ev, g.deliveries[0].datagram.data(), sizeof ev);
  EXPECT_EQ(ev.msg.event_data.event, unsigned{VMCI_EVENT_CTX_ID_UPDATE});
  EXPECT_EQ(ev.payload.context_id, 50u);
  // The guest is now 50: 40 is free, and 50 is refused to others.
  EXPECT_EQ(core.admit({proto::Role::kGuest, 50, 0, false}, &spare).status,
            VMCI_ERROR_ALREADY_EXISTS);
  EXPECT_EQ(core.admit({proto::Role::kGuest, 40, 0, false}, &spare).status, VMCI_SUCCESS);
}

TEST_F(Core, Stats_CountWhatIsHeld) {
  RecordingSink h, g;
  const PeerId hp = host(&h);
  const vmci_handle src = handle(hp, VMCI_INVALID_ID);
  const PeerId vm = guest(16, 0, &g);
  send(hp, src, VMCI_MAKE_HANDLE(16, 1), 10);
  Stats s = core.stats();
  EXPECT_EQ(s.guest_contexts, 1u);
  EXPECT_EQ(s.host_connections, 1u);
  EXPECT_EQ(s.host_datagram_handles, 1u);
  EXPECT_EQ(s.pending_datagrams, 1u);
  EXPECT_EQ(s.pending_datagram_bytes, 34u);
  core.remove(vm);
  core.remove(hp);
  s = core.stats();
  EXPECT_EQ(s.guest_contexts + s.host_connections + s.host_datagram_handles + s.pending_datagrams +
                s.pending_datagram_bytes,
            0u);
}

}  // namespace
}  // namespace vmci::host

namespace vmci::host {
namespace {

// The status word a host endpoint maps, read through the descriptor.
uint32_t peer_attached(const QueuePairMemory& memory) {
  proto::QueuePairStatus status{};
  EXPECT_EQ(::pread(memory.status_fd(), &status, sizeof status, 0),
            static_cast<ssize_t>(sizeof status));
  return status.peer_attached;
}

TEST_F(Core, QueuePair_GuestHypercallCreatesHostAttachesStatusFollowsTheGuest) {
  RecordingSink vm_sink, host_sink;
  const PeerId vm = guest(40, 0, &vm_sink);
  const PeerId hp = host(&host_sink);
  std::shared_ptr<const QueuePairMemory> memory;
  const vmci_handle h = VMCI_MAKE_HANDLE(40, 2000);
  EXPECT_EQ(core.send(vm, proto::make_qp_alloc_message(h, VMCI_INVALID_ID, 0, 8192, 4096), &memory),
            VMCI_SUCCESS);
  ASSERT_TRUE(memory);
  EXPECT_EQ(memory->size(), proto::queue_pair_layout(8192, 4096).total);
  const QueuePairReply attach = core.qpair_alloc(hp, {h, VMCI_INVALID_ID, 0, 0, 4096, 8192});
  ASSERT_EQ(attach.status, VMCI_SUCCESS);
  EXPECT_EQ(attach.memory, memory);
  EXPECT_EQ(peer_attached(*memory), 1u);
  ASSERT_EQ(vm_sink.deliveries.size(), 1u);  // QP_PEER_ATTACH to the creator
  EXPECT_EQ(core.stats().queue_pairs, 1u);

  EXPECT_EQ(core.send(vm, proto::make_qp_detach_message(h)), VMCI_SUCCESS);
  EXPECT_EQ(peer_attached(*memory), 0u);
  ASSERT_EQ(host_sink.deliveries.size(), 1u);  // QP_PEER_DETACH to the host
  EXPECT_EQ(core.qpair_detach(hp, h), VMCI_SUCCESS);
  EXPECT_EQ(core.stats().queue_pairs, 0u);
  EXPECT_EQ(core.stats().queue_pair_bytes, 0u);
}

TEST_F(Core, QueuePair_RemovedContextDetachesItsPairsAfterCtxRemoved) {
  RecordingSink host_sink;
  const PeerId hp = host(&host_sink);
  const PeerId vm = guest(41);
  const QueuePairReply created = core.qpair_alloc(hp, {VMCI_INVALID_HANDLE, 41, 0, 0, 4096, 4096});
  ASSERT_EQ(created.status, VMCI_SUCCESS);
  EXPECT_EQ(peer_attached(*created.memory), 0u);  // no guest yet
  std::shared_ptr<const QueuePairMemory> memory;
  ASSERT_EQ(core.send(vm, proto::make_qp_alloc_message(created.handle, VMCI_INVALID_ID, 0, 4096, 4096),
                      &memory),
            VMCI_SUCCESS);
  EXPECT_EQ(peer_attached(*created.memory), 1u);
  host_sink.deliveries.clear();  // QP_PEER_ATTACH
  core.remove(vm);
  ASSERT_EQ(host_sink.deliveries.size(), 2u);
  auto event_of = [](const std::vector<uint8_t>& dg) {
    vmci_event_data ed;
    std::memcpy(&ed, dg.data() + sizeof(vmci_datagram), sizeof ed);
    return ed.event;
  };
  EXPECT_EQ(event_of(host_sink.deliveries[0].datagram), uint32_t{VMCI_EVENT_CTX_REMOVED});
  EXPECT_EQ(event_of(host_sink.deliveries[1].datagram), uint32_t{VMCI_EVENT_QP_PEER_DETACH});
  EXPECT_EQ(peer_attached(*created.memory), 0u);
  core.remove(hp);
  EXPECT_EQ(core.stats().queue_pairs, 0u);
}

TEST_F(Core, QueuePair_NoMemoryIsNoResourcesAndLeavesNoPair) {
  Hypervisor starved({}, test_support::quiet_logger(),
                     [](vmci_handle, uint64_t, uint64_t, std::string* error) {
                       *error = "injected";
                       return std::unique_ptr<QueuePairMemory>();
                     });
  const auto a = starved.admit({proto::Role::kGuest, 30, 0, false}, &spare);
  std::shared_ptr<const QueuePairMemory> memory;
  EXPECT_EQ(starved.send(a.peer,
                         proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(30, 9), VMCI_INVALID_ID, 0,
                                                      4096, 4096),
                         &memory),
            VMCI_ERROR_NO_RESOURCES);
  EXPECT_FALSE(memory);
  EXPECT_EQ(starved.stats().queue_pairs, 0u);
}

TEST_F(Core, QueuePair_AContextCannotDetachOrTakeAnotherContextsPair) {
  const PeerId vm1 = guest(50);
  const PeerId vm2 = guest(51);
  RecordingSink h;
  const PeerId hp = host(&h);
  const vmci_handle pair = VMCI_MAKE_HANDLE(50, 4000);
  std::shared_ptr<const QueuePairMemory> memory;
  ASSERT_EQ(core.send(vm1, proto::make_qp_alloc_message(pair, VMCI_HOST_CONTEXT_ID, 0, 4096, 4096),
                      &memory),
            VMCI_SUCCESS);
  // Another guest can neither detach it nor get its memory.
  EXPECT_EQ(core.send(vm2, proto::make_qp_detach_message(pair)), VMCI_ERROR_NOT_FOUND);
  std::shared_ptr<const QueuePairMemory> stolen;
  EXPECT_LT(core.send(vm2, proto::make_qp_alloc_message(pair, VMCI_INVALID_ID, 0, 4096, 4096),
                      &stolen),
            VMCI_SUCCESS);
  EXPECT_FALSE(stolen);
  // Nor create a pair in another context's name.
  EXPECT_EQ(core.send(vm2, proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(50, 4001), VMCI_INVALID_ID,
                                                        0, 4096, 4096)),
            VMCI_ERROR_NO_ACCESS);
  // A host connection that is not an endpoint cannot detach it either.
  EXPECT_EQ(core.qpair_detach(hp, pair), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(core.stats().queue_pairs, 1u);
}

// Found by the hypervisor fuzz target: after a guest's context id changed,
// its pairs' events went to the old id and its pairs no longer counted
// against its limits.
TEST_F(Core, QueuePair_AGuestsPairsFollowItsContextIdUpdate) {
  RecordingSink g, h;
  const PeerId vm = guest(16, 0, &g);
  const PeerId hp = host(&h);
  const vmci_handle pair = VMCI_MAKE_HANDLE(16, 1024);
  ASSERT_EQ(core.send(vm, proto::make_qp_alloc_message(pair, VMCI_HOST_CONTEXT_ID, 0, 4096, 4096)),
            VMCI_SUCCESS);
  ASSERT_EQ(core.qpair_alloc(hp, {pair, VMCI_INVALID_ID, 0, 0, 4096, 4096}).status, VMCI_SUCCESS);
  ASSERT_EQ(core.update_context_id(16, 3), VMCI_SUCCESS);
  g.deliveries.clear();
  ASSERT_EQ(core.qpair_detach(hp, pair), VMCI_SUCCESS);
  ASSERT_EQ(g.deliveries.size(), 1u);
  const vmci_datagram event = proto::header_of(g.deliveries[0].datagram);
  EXPECT_EQ(event.dst.context, 3u);  // QP_PEER_DETACH, to the context it is now
  // The pair is still its own under its new id: it detaches it; a newcomer
  // taking the old id is no endpoint of it.
  const PeerId newcomer = guest(16);
  EXPECT_EQ(core.send(newcomer, proto::make_qp_detach_message(pair)), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(core.send(vm, proto::make_qp_detach_message(pair)), VMCI_SUCCESS);
  EXPECT_EQ(core.stats().queue_pairs, 0u);
}

class TwoPairs : public Core {
 protected:
  TwoPairs() : Core(Limits{.max_queue_pairs_per_context = 2}) {}
};

TEST_F(TwoPairs, QueuePair_PairsHeldUnderAnOldIdStillCountAgainstTheLimit) {
  const PeerId vm = guest(16);
  for (const vmci_id rid : {1024u, 1025u}) {
    ASSERT_EQ(core.send(vm, proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(16, rid),
                                                         VMCI_HOST_CONTEXT_ID, 0, 4096, 4096)),
              VMCI_SUCCESS);
  }
  ASSERT_EQ(core.update_context_id(16, 3), VMCI_SUCCESS);
  EXPECT_EQ(core.send(vm, proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(3, 1024),
                                                       VMCI_HOST_CONTEXT_ID, 0, 4096, 4096)),
            VMCI_ERROR_NO_RESOURCES);
}

TEST_F(Core, QueuePair_HostConnectionsCannotSendTheHypercalls) {
  RecordingSink h;
  const PeerId hp = host(&h);
  EXPECT_EQ(core.send(hp, proto::make_qp_alloc_message(VMCI_MAKE_HANDLE(2, 9), VMCI_INVALID_ID, 0,
                                                       4096, 4096)),
            VMCI_ERROR_DEVICE_NOT_FOUND);  // hosts use the broker calls, not hypercalls
  EXPECT_EQ(core.stats().queue_pairs, 0u);
}

}  // namespace
}  // namespace vmci::host

namespace vmci::host {
namespace {

// The doorbell fast path as the core decides it (vmci/proto/ring_channel.h).
class RingChannelCore : public Core {
 protected:
  PeerId socket_guest(RecordingSink* sink) {
    PeerHello hello{proto::Role::kGuest, VMCI_INVALID_ID, 0, false};
    hello.rings_through_channels = true;
    const auto a = core.admit(hello, sink);
    EXPECT_EQ(a.status, VMCI_SUCCESS) << a.reason;
    return a.peer;
  }
  int notify(PeerId from, vmci_handle bell) {
    return static_cast<int>(
        core.send(from, proto::make_doorbell_message(VMCI_DOORBELL_NOTIFY, bell)));
  }
  // A host owner's doorbell that a socket guest has rung once (so holds a slot of).
  struct Rung {
    PeerId owner, ringer;
    vmci_handle bell;
  };
  Rung ring_once() {
    Rung r{host(&owner_sink), socket_guest(&ringer_sink), VMCI_INVALID_HANDLE};
    const auto bell = core.create_host_doorbell(r.owner, VMCI_INVALID_ID, 0, 3);
    EXPECT_EQ(bell.status, VMCI_SUCCESS);
    r.bell = bell.handle;
    EXPECT_EQ(notify(r.ringer, r.bell), VMCI_SUCCESS);
    return r;
  }
  RecordingSink owner_sink, ringer_sink;
};

TEST_F(RingChannelCore, AnAllowedRingGrantsASlotToTheOwnerFirstThenTheRinger) {
  const Rung rung = ring_once();
  EXPECT_EQ(owner_sink.rings, std::vector<uint64_t>{3});  // the ring itself went the usual way
  ASSERT_EQ(owner_sink.grants.size(), 1u);
  ASSERT_EQ(ringer_sink.grants.size(), 1u);
  const auto& o = owner_sink.grants[0];
  const auto& r = ringer_sink.grants[0];
  EXPECT_EQ(o.body.side, static_cast<uint8_t>(proto::RingSide::kOwner));
  EXPECT_EQ(r.body.side, static_cast<uint8_t>(proto::RingSide::kRinger));
  EXPECT_EQ(o.body.channel_id, r.body.channel_id);
  EXPECT_EQ(o.body.slot, r.body.slot);
  EXPECT_EQ(o.body.generation, r.body.generation);
  EXPECT_TRUE(o.first && r.first);
  EXPECT_EQ(o.channel, r.channel);
  // Held: the next ring through the core grants nothing new.
  ASSERT_EQ(notify(rung.ringer, rung.bell), VMCI_SUCCESS);
  EXPECT_EQ(ringer_sink.grants.size(), 1u);
  EXPECT_EQ(core.stats().ring_grants, 1u);
}

TEST_F(RingChannelCore, RingersPastTheOwnersChannelBoundRingThroughTheCoreAndAreCounted) {
  const PeerId owner = host(&owner_sink);
  const auto bell = core.create_host_doorbell(owner, VMCI_INVALID_ID, 0, 3);
  ASSERT_EQ(bell.status, VMCI_SUCCESS);
  std::vector<std::unique_ptr<RecordingSink>> sinks;
  std::vector<PeerId> ringers;
  for (size_t i = 0; i <= kMaxRingChannelsPerOwner; ++i) {  // one more than the owner may own
    sinks.push_back(std::make_unique<RecordingSink>());
    ringers.push_back(socket_guest(sinks.back().get()));
    ASSERT_EQ(notify(ringers.back(), bell.handle), VMCI_SUCCESS);
  }
  EXPECT_EQ(owner_sink.grants.size(), kMaxRingChannelsPerOwner);
  EXPECT_TRUE(sinks.back()->grants.empty());  // the 121st ringer holds no slot...
  ASSERT_EQ(notify(ringers.back(), bell.handle), VMCI_SUCCESS);  // ...so its rings still work,
  EXPECT_EQ(owner_sink.rings.size(), kMaxRingChannelsPerOwner + 2);  // through the core
  EXPECT_EQ(core.stats().ring_channels, kMaxRingChannelsPerOwner);
  const Introspection snap = core.introspect();
  EXPECT_EQ(snap.ring_channel_refusals.at("owner_channels"), 2u);  // each refusal counted
  EXPECT_EQ(snap.ring_channel_refusals.at("ringer_channels"), 0u);
  // A ringer goes: the owner has room for the 121st's next ring.
  core.remove(ringers.front());
  ASSERT_EQ(notify(ringers.back(), bell.handle), VMCI_SUCCESS);
  EXPECT_EQ(sinks.back()->grants.size(), 1u);
}

TEST_F(RingChannelCore, WhileACaptureRunsNoRingTakesAFastPathAndEachIsCaptured) {
  const std::string path = ::testing::TempDir() + "ring_capture_" + std::to_string(::getpid());
  std::string error;
  auto file = trace::PcapngFile::open(path, trace::kLinkTypeUser0, "vmci-hostpeer", &error);
  ASSERT_TRUE(file) << error;
  core.observe_with(std::make_shared<RequestCapture>(std::move(file)));
  const Rung rung = ring_once();
  ASSERT_EQ(notify(rung.ringer, rung.bell), VMCI_SUCCESS);
  EXPECT_TRUE(owner_sink.grants.empty());
  EXPECT_TRUE(ringer_sink.grants.empty());
  EXPECT_EQ(owner_sink.rings, (std::vector<uint64_t>{3, 3}));  // both went through the core
  core.observe_with(nullptr);
  std::vector<std::vector<uint8_t>> records;
  ASSERT_TRUE(trace::PcapngFile::read_packets(path, &records, &error)) << error;
  ::unlink(path.c_str());
  size_t rings = 0;
  for (const auto& r : records) rings += r.at(5) == static_cast<uint8_t>(CaptureKind::kRing);
  EXPECT_EQ(rings, 2u);
}

TEST_F(RingChannelCore, RefusedRingsAndPeersThatCallTheCoreDirectlyGetNoGrant) {
  const PeerId owner = host(&owner_sink);
  const PeerId embedded_like = guest(VMCI_INVALID_ID, 0, &ringer_sink);  // rings_through_channels off
  const auto bell = core.create_host_doorbell(owner, VMCI_INVALID_ID, 0, 3);
  ASSERT_EQ(notify(embedded_like, bell.handle), VMCI_SUCCESS);
  EXPECT_TRUE(ringer_sink.grants.empty());
  RecordingSink other;
  const PeerId ringer = socket_guest(&other);
  EXPECT_EQ(notify(ringer, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 999999)), VMCI_ERROR_NOT_FOUND);
  EXPECT_TRUE(other.grants.empty());
  EXPECT_EQ(core.stats().ring_channels, 0u);
}

// kFeatureNoRingChannels: a connection that may not take part in ring
// channels is granted none as the ringer, nor as the doorbell's owner.
TEST_F(RingChannelCore, NoGrantWhenEitherSideRefusesRingChannels) {
  struct Case {
    const char* name;
    bool ringer_allows;
    bool owner_allows;
    bool granted;
  } cases[] = {
      {"both allow", true, true, true},
      {"the ringer refuses", false, true, false},
      {"the owner refuses", true, false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RecordingSink owner_s, ringer_s;
    PeerHello owner_hello{proto::Role::kHost, VMCI_INVALID_ID, 0, true};
    owner_hello.rings_through_channels = true;
    owner_hello.allows_ring_channels = c.owner_allows;
    const PeerId owner = core.admit(owner_hello, &owner_s).peer;
    PeerHello ringer_hello{proto::Role::kGuest, VMCI_INVALID_ID, 0, false};
    ringer_hello.rings_through_channels = true;
    ringer_hello.allows_ring_channels = c.ringer_allows;
    const PeerId ringer = core.admit(ringer_hello, &ringer_s).peer;
    const auto bell = core.create_host_doorbell(owner, VMCI_INVALID_ID, 0, 3);
    ASSERT_EQ(notify(ringer, bell.handle), VMCI_SUCCESS);
    EXPECT_EQ(owner_s.rings, std::vector<uint64_t>{3});  // the ring itself goes through hostpeer
    EXPECT_EQ(ringer_s.grants.size(), c.granted ? 1u : 0u);
    EXPECT_EQ(owner_s.grants.size(), c.granted ? 1u : 0u);
    core.remove(ringer);
    core.remove(owner);
  }
}

TEST_F(RingChannelCore, UnlinkRevokesTheSlotBeforeItReturns) {
  const Rung rung = ring_once();
  const auto& r = ringer_sink.grants.at(0);
  ASSERT_EQ(core.destroy_host_doorbell(rung.owner, rung.bell), VMCI_SUCCESS);
  EXPECT_EQ(proto::ring_slot(r.channel.get(), r.body.slot, r.body.generation),
            proto::SlotRing::kRefused);
  EXPECT_EQ(notify(rung.ringer, rung.bell), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(core.stats().ring_grants, 0u);
}

TEST_F(RingChannelCore, APeerThatGoesClosesItsChannelsAndTheOtherSideIsTold) {
  const Rung rung = ring_once();
  const auto r = ringer_sink.grants.at(0);
  core.remove(rung.owner);
  ASSERT_EQ(ringer_sink.closed_channels.size(), 1u);
  EXPECT_EQ(ringer_sink.closed_channels[0].channel_id, r.body.channel_id);
  EXPECT_EQ(ringer_sink.closed_channels[0].side, static_cast<uint8_t>(proto::RingSide::kRinger));
  EXPECT_EQ(proto::ring_slot(r.channel.get(), r.body.slot, r.body.generation),
            proto::SlotRing::kRefused);
  EXPECT_EQ(core.stats().ring_channels, 0u);
}

TEST_F(RingChannelCore, AGuestsNewContextIdClosesItsChannels) {
  ring_once();
  ASSERT_EQ(core.update_context_id(16, 40), VMCI_SUCCESS);
  EXPECT_EQ(ringer_sink.closed_channels.size(), 1u);
  EXPECT_EQ(owner_sink.closed_channels.size(), 1u);
  EXPECT_EQ(core.stats().ring_channels, 0u);
}

// The deliveries a lane's ringer must let the owner take before its next
// datagram (RingChannel::owner_deliveries, for barrier records).
class LaneBarrierCore : public RingChannelCore {
 protected:
  Admission lane_peer(proto::Role role, RecordingSink* sink) {
    PeerHello hello{role, VMCI_INVALID_ID, 0, role == proto::Role::kHost};
    hello.rings_through_channels = true;
    hello.takes_host_lanes = true;
    const Admission a = core.admit(hello, sink);
    EXPECT_EQ(a.status, VMCI_SUCCESS) << a.reason;
    return a;
  }
  static uint64_t published(const RecordingSink::Grant& grant) {
    return std::atomic_ref<uint64_t>(grant.channel->owner_deliveries).load();
  }
};

TEST_F(LaneBarrierCore, AHostsLaneWaitsOnlyForWhatItsOwnGuestCaused) {
  RecordingSink hs, as, bs;
  const PeerId hp = lane_peer(proto::Role::kHost, &hs).peer;
  const Admission ga = lane_peer(proto::Role::kGuest, &as);
  const Admission gb = lane_peer(proto::Role::kGuest, &bs);
  const PeerId a = ga.peer, b = gb.peer;
  const vmci_id a_cid = ga.cid, b_cid = gb.cid;
  const vmci_handle h = handle(hp, 7);
  ASSERT_EQ(send(a, VMCI_MAKE_HANDLE(a_cid, 1), h), 28);  // earns a's lane to the host
  ASSERT_EQ(send(b, VMCI_MAKE_HANDLE(b_cid, 1), h), 28);
  ASSERT_EQ(as.grants.size(), 1u);
  ASSERT_EQ(bs.grants.size(), 1u);
  const uint64_t a_before = published(as.grants[0]);
  EXPECT_EQ(a_before, 1u);  // at its grant: the datagram that earned it
  // b's datagrams through hostpeer do not hold a's lane back: the host
  // takes each sender's as they come, as Linux's host dispatch does.
  ASSERT_EQ(send(b, VMCI_MAKE_HANDLE(b_cid, 1), h), 28);
  EXPECT_EQ(published(as.grants[0]), a_before);
  EXPECT_EQ(published(bs.grants[0]), 3u);
  // What a causes (its pair's QP_PEER_DETACH to the host) does.
  const vmci_handle pair = VMCI_MAKE_HANDLE(a_cid, 1024);
  ASSERT_EQ(core.send(a, proto::make_qp_alloc_message(pair, VMCI_HOST_CONTEXT_ID, 0, 4096, 4096)),
            VMCI_SUCCESS);
  ASSERT_EQ(core.qpair_alloc(hp, {pair, VMCI_INVALID_ID, 0, 0, 4096, 4096}).status, VMCI_SUCCESS);
  ASSERT_EQ(core.send(a, proto::make_qp_detach_message(pair)), VMCI_SUCCESS);
  EXPECT_EQ(published(as.grants[0]), 4u);  // the host's fourth delivery: the detach event
  EXPECT_EQ(published(bs.grants[0]), 3u);
}

TEST_F(LaneBarrierCore, AGuestsLanesWaitForEveryDeliveryBeforeThem) {
  RecordingSink gs, h1s, h2s;
  const vmci_id cid = lane_peer(proto::Role::kGuest, &gs).cid;
  const PeerId h1 = lane_peer(proto::Role::kHost, &h1s).peer;
  const PeerId h2 = lane_peer(proto::Role::kHost, &h2s).peer;
  const vmci_handle from1 = handle(h1, 7), from2 = handle(h2, 8);
  ASSERT_EQ(send(h1, from1, VMCI_MAKE_HANDLE(cid, 1)), 28);  // earns h1's lane to the guest
  ASSERT_EQ(h1s.grants.size(), 1u);
  EXPECT_EQ(published(h1s.grants[0]), 1u);
  // One queue in VMCI (the guest's device): h2's datagram through hostpeer
  // is ahead of h1's next lane record too.
  ASSERT_EQ(send(h2, from2, VMCI_MAKE_HANDLE(cid, 1)), 28);
  EXPECT_EQ(published(h1s.grants[0]), 2u);
}

// What a guest can make the core log once per request, repeated 10000
// times: a burst of lines, then, when the peer goes, one that counts the
// rest (vmci/proto/log_rate_limit.h).
TEST(CoreLog, RequestsAGuestRepeatsAreLoggedABurstThenOneCountWhenItGoes) {
  struct Case {
    const char* name;
    // One request; the core's result must be `refused`.
    std::function<int64_t(Hypervisor&, PeerId vm, vmci_handle host_handle)> request;
    int64_t refused;
    const char* line;       // each line written says this
    const char* summary;    // "<peer>: <count> more <this>"
    bool counted_for_host;  // the pending cap is the receiver's
  };
  const auto dg = [](vmci_handle dst, vmci_handle src, size_t payload = 4) {
    return proto::make_datagram(dst, src, std::vector<uint8_t>(payload, 0x5a));
  };
  const Case kCases[] = {
      {"a forged source",
       [&](Hypervisor& c, PeerId vm, vmci_handle h) {
         return c.send(vm, dg(h, VMCI_MAKE_HANDLE(21, 1)));
       },
       VMCI_ERROR_NO_ACCESS, "datagram with source (21:1) refused (not its own context)",
       "datagrams with a source not its own refused", false},
      {"a malformed datagram",
       [](Hypervisor& c, PeerId vm, vmci_handle) {
         return c.send(vm, std::vector<uint8_t>(10, 0));
       },
       VMCI_ERROR_INVALID_ARGS, "malformed or oversized datagram (10 bytes) refused",
       "malformed or oversized datagrams refused", false},
      {"a malformed queue pair alloc",
       [&](Hypervisor& c, PeerId vm, vmci_handle) {
         return c.send(vm, dg(VMCI_MAKE_HANDLE(0, VMCI_QUEUEPAIR_ALLOC), VMCI_ANON_SRC_HANDLE));
       },
       VMCI_ERROR_INVALID_ARGS, "malformed queue pair alloc hypercall (28 bytes) refused",
       "malformed queue pair alloc hypercalls refused", false},
      {"an acknowledgement of nothing",
       [](Hypervisor& c, PeerId vm, vmci_handle) {
         c.delivered(vm, 999999);
         return int64_t{VMCI_ERROR_NOT_FOUND};
       },
       VMCI_ERROR_NOT_FOUND, "acknowledged delivery 999999 that it was not given",
       "acknowledgements of deliveries it was not given", false},
      {"datagrams at a host's pending cap",
       [&](Hypervisor& c, PeerId vm, vmci_handle h) {
         return c.send(vm, dg(h, VMCI_MAKE_HANDLE(20, 1)));
       },
       VMCI_ERROR_NO_RESOURCES, "more refused", "datagrams refused at the pending cap", true},
  };
  constexpr int kRequests = 10000;
  const size_t burst = proto::LogRateLimitOptions{}.burst;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2 * kRequests);
    auto log = std::make_shared<spdlog::logger>("core", lines);
    log->set_pattern("%v");
    Hypervisor core(Limits{.max_pending_datagram_bytes = 1000}, log);
    RecordingSink host_sink, guest_sink;  // neither acknowledges anything
    const PeerId host = core.admit({proto::Role::kHost, VMCI_INVALID_ID, 0, true}, &host_sink).peer;
    const vmci_handle handle = core.create_host_handle(host, 7, 0, 0).handle;
    const PeerId vm = core.admit({proto::Role::kGuest, 20, 0, false}, &guest_sink).peer;
    int refused = 0;
    for (int i = 0; i < kRequests; ++i) refused += c.request(core, vm, handle) == c.refused;
    ASSERT_GT(refused, kRequests / 2);
    const auto count = [&](const std::string& text) {
      size_t n = 0;
      for (const std::string& line : lines->last_formatted()) {
        n += line.find(text) != std::string::npos;
      }
      return n;
    };
    EXPECT_EQ(count(c.line), burst);
    EXPECT_EQ(count("not logged"), 0u);  // what was counted is written when the peer goes
    core.remove(c.counted_for_host ? host : vm);
    const std::string summary =
        std::string(c.counted_for_host ? "host connection #1" : "guest context 20") + ": " +
        std::to_string(refused - burst) + " more " + c.summary + ", not logged (over ";
    EXPECT_EQ(count(summary), 1u) << "no line starting with: " << summary;
    EXPECT_LE(lines->last_formatted().size(), burst + 4);  // connected, connected, gone
  }
}

}  // namespace
}  // namespace vmci::host

namespace vmci::host {
namespace {

// introspect(): what each connection sent, received and holds, each pair's
// endpoints and fill (read from the queue headers the endpoints write), and
// each doorbell's rings.
TEST_F(Core, Introspect_ShowsConnectionsPairsFillDoorbellsAndHandles) {
  RecordingSink vm_sink, host_sink;
  PeerHello guest_hello;
  guest_hello.requested_cid = 40;
  guest_hello.pid = 4242;
  guest_hello.uid = 1000;
  const PeerId vm = core.admit(guest_hello, &vm_sink).peer;
  const PeerId hp = host(&host_sink);
  const vmci_handle service = handle(hp, 5000);
  EXPECT_EQ(send(vm, VMCI_MAKE_HANDLE(40, 1), service, 10), 34);
  const int64_t refusal = send(vm, VMCI_MAKE_HANDLE(40, 1), VMCI_MAKE_HANDLE(2, 9999), 10);
  EXPECT_LT(refusal, 0);

  std::shared_ptr<const QueuePairMemory> memory;
  const vmci_handle pair = VMCI_MAKE_HANDLE(40, 2000);
  ASSERT_EQ(core.send(vm, proto::make_qp_alloc_message(pair, VMCI_INVALID_ID, 0, 8192, 4096), &memory),
            VMCI_SUCCESS);
  ASSERT_EQ(core.qpair_alloc(hp, {pair, VMCI_INVALID_ID, 0, 0, 4096, 8192}).status, VMCI_SUCCESS);
  // The guest enqueued 100 bytes: its produce queue's tail moves.
  const auto layout = proto::queue_pair_layout(8192, 4096);
  const uint64_t tail = 100;
  ASSERT_EQ(::pwrite(memory->fd(), &tail, sizeof tail,
                     static_cast<off_t>(layout.produce_header + offsetof(vmci_queue_header, producer_tail))),
            static_cast<ssize_t>(sizeof tail));

  const auto bell = core.create_host_doorbell(hp, VMCI_INVALID_ID, 0, 7);
  ASSERT_EQ(bell.status, VMCI_SUCCESS);
  EXPECT_EQ(core.send(vm, proto::make_doorbell_message(VMCI_DOORBELL_NOTIFY, bell.handle)), VMCI_SUCCESS);

  const Introspection snap = core.introspect();
  EXPECT_FALSE(snap.version.empty());
  EXPECT_EQ(snap.protocol, std::to_string(proto::kProtocolMajor) + "." + std::to_string(proto::kProtocolMinor));
  EXPECT_GE(snap.now_unix_ms, snap.started_unix_ms);
  EXPECT_EQ(snap.connections_admitted, 2u);
  EXPECT_EQ(snap.refusals_by_status,
            (std::map<std::string, uint64_t>{{std::string(proto::status_name(refusal)), 1}}));
  ASSERT_EQ(snap.contexts.size(), 2u);
  const ContextInfo& g = snap.contexts[0];
  EXPECT_EQ(g.connection, vm);
  EXPECT_EQ(g.cid, 40u);
  EXPECT_EQ(g.pid, 4242);
  EXPECT_EQ(g.uid, 1000);
  EXPECT_EQ(g.datagrams_sent, 4u);  // two datagrams, the alloc and the notify hypercalls
  EXPECT_EQ(g.refused, 1u);
  EXPECT_EQ(g.events_received.at(std::string(proto::event_name(VMCI_EVENT_QP_PEER_ATTACH))), 1u);
  const ContextInfo& h = snap.contexts[1];
  EXPECT_EQ(h.role, proto::Role::kHost);
  EXPECT_EQ(h.datagrams_received, 1u);
  EXPECT_EQ(h.bytes_received, 34u);
  EXPECT_EQ(h.pending_datagrams, 1u);  // not acknowledged here

  ASSERT_EQ(snap.pairs.size(), 1u);
  const PairInfo& p = snap.pairs[0];
  EXPECT_EQ(p.state, "attached-mem");
  EXPECT_EQ(p.creator_cid, 40u);
  EXPECT_EQ(p.attacher_cid, VMCI_HOST_CONTEXT_ID);
  EXPECT_EQ(p.attacher_connection, hp);
  EXPECT_EQ(p.creator_to_attacher.size, 8192u);
  EXPECT_EQ(p.creator_to_attacher.used, 100u);
  EXPECT_EQ(p.attacher_to_creator.size, 4096u);
  EXPECT_EQ(p.attacher_to_creator.used, 0u);

  ASSERT_EQ(snap.doorbells.size(), 1u);
  EXPECT_EQ(snap.doorbells[0].owner_connection, hp);
  EXPECT_EQ(snap.doorbells[0].notify_index, 7u);
  EXPECT_EQ(snap.doorbells[0].rings, 1u);
  ASSERT_EQ(snap.handles.size(), 1u);
  EXPECT_EQ(snap.handles[0].handle.resource, 5000u);
  EXPECT_EQ(snap.handles[0].owner_connection, hp);

  // Hostpeer-wide figures outlive the connection that made them.
  core.remove(vm);
  const Introspection after = core.introspect();
  EXPECT_EQ(after.connections_admitted, 2u);
  EXPECT_EQ(after.refusals_by_status, snap.refusals_by_status);
}

}  // namespace
}  // namespace vmci::host
