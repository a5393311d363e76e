#include "queue_pair_broker.h"

#include <gtest/gtest.h>

namespace vmci::host {
namespace {

const QpEndpoint kGuest16{1, 16};
const QpEndpoint kGuest17{2, 17};
const QpEndpoint kHost{3, VMCI_HOST_CONTEXT_ID};
const QpEndpoint kOtherHost{4, VMCI_HOST_CONTEXT_ID};
const QpEndpoint kRestricted{5, 18, VMCI_PRIVILEGE_FLAG_RESTRICTED};
const vmci_handle kQp = VMCI_MAKE_HANDLE(16, 1024);

QpAllocRequest request(vmci_handle h, uint64_t produce, uint64_t consume, uint32_t flags = 0,
                       vmci_id peer = VMCI_INVALID_ID, uint32_t priv = 0) {
  return QpAllocRequest{h, peer, flags, priv, produce, consume};
}

class Broker : public ::testing::Test {
 protected:
  QpAllocResult alloc(const QpEndpoint& who, const QpAllocRequest& r) {
    return broker.alloc(who, r, &notices);
  }
  QueuePairBroker broker{Limits{}};
  std::vector<QpNotice> notices;
};

TEST_F(Broker, GuestCreatesHostAttachesWithSwappedSizes) {
  const auto created = alloc(kGuest16, request(kQp, 4096, 8192));
  ASSERT_EQ(created.status, VMCI_SUCCESS);
  EXPECT_TRUE(created.created);
  EXPECT_EQ(broker.state_of(kQp), static_cast<int>(QpState::kCreatedMem));
  const auto attached = alloc(kHost, request(kQp, 8192, 4096));
  ASSERT_EQ(attached.status, VMCI_SUCCESS);
  EXPECT_FALSE(attached.created);
  EXPECT_EQ(broker.state_of(kQp), static_cast<int>(QpState::kAttachedMem));
}

TEST_F(Broker, Item15_PeerAttachGoesOnlyToTheCreatorWithTheAttachersId) {
  alloc(kGuest16, request(kQp, 4096, 4096));
  EXPECT_TRUE(notices.empty());
  alloc(kHost, request(kQp, 4096, 4096));
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].to, kGuest16.owner);
  EXPECT_EQ(notices[0].event, VMCI_EVENT_QP_PEER_ATTACH);
  EXPECT_EQ(notices[0].peer_id, 2u);
}

TEST_F(Broker, Item15_PeerDetachGoesToTheRemainingEndpointNotOnLastDetach) {
  alloc(kGuest16, request(kQp, 4096, 4096));
  alloc(kHost, request(kQp, 4096, 4096));
  notices.clear();
  ASSERT_EQ(broker.detach(kHost, kQp, &notices), VMCI_SUCCESS);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].to, kGuest16.owner);
  EXPECT_EQ(notices[0].event, VMCI_EVENT_QP_PEER_DETACH);
  EXPECT_EQ(notices[0].peer_id, 2u);
  notices.clear();
  ASSERT_EQ(broker.detach(kGuest16, kQp, &notices), VMCI_SUCCESS);
  EXPECT_TRUE(notices.empty());
  EXPECT_EQ(broker.count(), 0u);
}

TEST_F(Broker, Item8_AttachOnlyToAMissingPairIsNotFound) {
  EXPECT_EQ(alloc(kHost, request(kQp, 4096, 4096, VMCI_QPFLAG_ATTACH_ONLY)).status,
            VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 4096, VMCI_QPFLAG_ATTACH_ONLY)).status,
            VMCI_ERROR_NOT_FOUND);
}

TEST_F(Broker, Item9_SizeOrFlagMismatchIsQueuePairMismatch) {
  alloc(kGuest16, request(kQp, 4096, 8192));
  EXPECT_EQ(alloc(kHost, request(kQp, 4096, 8192)).status, VMCI_ERROR_QUEUEPAIR_MISMATCH)
      << "a host attacher passes the sizes swapped";
  EXPECT_EQ(alloc(kHost, request(kQp, 8192, 8192)).status, VMCI_ERROR_QUEUEPAIR_MISMATCH);
  EXPECT_EQ(
      alloc(kHost, request(kQp, 8192, 4096, VMCI_QPFLAG_NONBLOCK | VMCI_QPFLAG_ATTACH_ONLY)).status,
      VMCI_SUCCESS)
      << "ATTACH_ONLY and NONBLOCK may differ";
}

TEST_F(Broker, Item10_AThirdEndpointOrAReattachIsUnavailable) {
  alloc(kGuest16, request(kQp, 4096, 4096));
  alloc(kHost, request(kQp, 4096, 4096));
  EXPECT_EQ(alloc(kOtherHost, request(kQp, 4096, 4096)).status, VMCI_ERROR_ALREADY_EXISTS)
      << "context 2 already holds it";
  EXPECT_EQ(alloc(kGuest17, request(kQp, 4096, 4096)).status, VMCI_ERROR_UNAVAILABLE);
  broker.detach(kHost, kQp, &notices);
  EXPECT_EQ(alloc(kHost, request(kQp, 4096, 4096)).status, VMCI_ERROR_UNAVAILABLE)
      << "no re-attach after a detach";
}

TEST_F(Broker, Item11_SameContextAllocatingTwiceIsAlreadyExists) {
  alloc(kGuest16, request(kQp, 4096, 4096));
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 4096)).status, VMCI_ERROR_ALREADY_EXISTS);
}

TEST_F(Broker, Item12_VmToVmIsDstUnreachable) {
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 4096, 0, 17)).status, VMCI_ERROR_DST_UNREACHABLE);
  const vmci_handle h17 = VMCI_MAKE_HANDLE(17, 1024);
  alloc(kGuest17, request(h17, 4096, 4096));
  EXPECT_EQ(alloc(kGuest16, request(h17, 4096, 4096)).status, VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(Broker, Item13_PeerRestrictionAllowsOnlyThePeer) {
  const vmci_handle h = VMCI_MAKE_HANDLE(2, 5000);
  ASSERT_EQ(alloc(kHost, request(h, 4096, 4096, 0, 17)).status, VMCI_SUCCESS);
  EXPECT_EQ(alloc(kGuest16, request(h, 4096, 4096)).status, VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(alloc(kGuest17, request(h, 4096, 4096)).status, VMCI_SUCCESS);
}

TEST_F(Broker, CreatorMustOwnTheHandleOrNameItsPeer) {
  EXPECT_EQ(alloc(kGuest16, request(VMCI_MAKE_HANDLE(17, 1), 4096, 4096)).status,
            VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(alloc(kHost, request(VMCI_MAKE_HANDLE(16, 9), 4096, 4096, 0, 16)).status, VMCI_SUCCESS);
}

TEST_F(Broker, ArgumentChecks) {
  EXPECT_EQ(alloc(kGuest16, request(kQp, 0, 0)).status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 4096, VMCI_QPFLAG_LOCAL)).status,
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 4096, 0x10)).status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(alloc(kGuest16, request(VMCI_INVALID_HANDLE, 4096, 4096)).status,
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(alloc(kGuest16, request(kQp, 4096, 0)).status, VMCI_SUCCESS) << "one size 0 is fine";
}

TEST_F(Broker, HostCreatorGetsAHandleWhenItGivesNone) {
  const auto a = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 4096));
  const auto b = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 4096));
  ASSERT_EQ(a.status, VMCI_SUCCESS);
  EXPECT_EQ(a.handle.context, 2u);
  EXPECT_EQ(a.handle.resource, 1024u);
  EXPECT_EQ(b.handle.resource, 1025u);
  EXPECT_EQ(broker.state_of(a.handle), static_cast<int>(QpState::kCreatedNoMem));
}

TEST_F(Broker, GuestAttachesToAHostCreatedPair) {
  const auto h = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 8192)).handle;
  ASSERT_EQ(alloc(kGuest16, request(h, 8192, 4096)).status, VMCI_SUCCESS);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].to, kHost.owner);
  EXPECT_EQ(notices[0].peer_id, 16u);
}

TEST_F(Broker, HostCannotAttachToAHostCreatedPair) {
  const auto h = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 4096)).handle;
  EXPECT_EQ(alloc(kOtherHost, request(h, 4096, 4096)).status, VMCI_ERROR_ALREADY_EXISTS);
}

TEST_F(Broker, RestrictedContextsNeedTrust) {
  const auto h = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 4096)).handle;
  EXPECT_EQ(alloc(kRestricted, request(h, 4096, 4096)).status, VMCI_ERROR_NO_ACCESS);
  const auto trusted = alloc(kHost, request(VMCI_INVALID_HANDLE, 4096, 4096, 0, VMCI_INVALID_ID,
                                            VMCI_PRIVILEGE_FLAG_TRUSTED))
                           .handle;
  EXPECT_EQ(alloc(kRestricted, request(trusted, 4096, 4096)).status, VMCI_SUCCESS);
  const vmci_handle mine = VMCI_MAKE_HANDLE(18, 2000);
  ASSERT_EQ(alloc(kRestricted, request(mine, 4096, 4096)).status, VMCI_SUCCESS);
  EXPECT_EQ(alloc(kHost, request(mine, 4096, 4096)).status, VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(alloc(kHost, request(mine, 4096, 4096, 0, VMCI_INVALID_ID, VMCI_PRIVILEGE_FLAG_TRUSTED))
                .status,
            VMCI_SUCCESS);
}

TEST_F(Broker, PerContextLimits) {
  QueuePairBroker small(
      Limits{.max_qp_memory_per_context = 16384, .max_queue_pairs_per_context = 2});
  EXPECT_EQ(small.alloc(kGuest16, request(VMCI_MAKE_HANDLE(16, 1), 8192, 8192), &notices).status,
            VMCI_SUCCESS);
  EXPECT_EQ(small.alloc(kGuest16, request(VMCI_MAKE_HANDLE(16, 2), 1, 0), &notices).status,
            VMCI_ERROR_NO_RESOURCES)
      << "memory";
  EXPECT_EQ(small.memory_of(16), 16384u);
  QueuePairBroker two(Limits{.max_queue_pairs_per_context = 2});
  two.alloc(kGuest16, request(VMCI_MAKE_HANDLE(16, 1), 1, 1), &notices);
  two.alloc(kGuest16, request(VMCI_MAKE_HANDLE(16, 2), 1, 1), &notices);
  EXPECT_EQ(two.alloc(kGuest16, request(VMCI_MAKE_HANDLE(16, 3), 1, 1), &notices).status,
            VMCI_ERROR_NO_RESOURCES)
      << "count";
}

TEST_F(Broker, DetachRules) {
  EXPECT_EQ(broker.detach(kGuest16, kQp, &notices), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(broker.detach(kGuest16, VMCI_INVALID_HANDLE, &notices), VMCI_ERROR_INVALID_ARGS);
  alloc(kGuest16, request(kQp, 4096, 4096));
  EXPECT_EQ(broker.detach(kGuest17, kQp, &notices), VMCI_ERROR_NOT_FOUND);
  EXPECT_EQ(broker.detach(kGuest16, kQp, &notices), VMCI_SUCCESS);
  EXPECT_TRUE(notices.empty()) << "no event when the last endpoint leaves";
  EXPECT_EQ(broker.count(), 0u);
}

TEST_F(Broker, AConnectionGoingAwayDetachesAllItsPairs) {
  alloc(kGuest16, request(kQp, 4096, 4096));
  alloc(kHost, request(kQp, 4096, 4096));
  const vmci_handle second = VMCI_MAKE_HANDLE(16, 1025);
  alloc(kGuest16, request(second, 4096, 4096));
  notices.clear();
  broker.detach_all(kGuest16, &notices);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].to, kHost.owner);
  EXPECT_EQ(notices[0].event, VMCI_EVENT_QP_PEER_DETACH);
  EXPECT_EQ(notices[0].peer_id, 16u);
  EXPECT_EQ(broker.count(), 1u) << "the host still holds the first pair, in SHUTDOWN";
  EXPECT_EQ(broker.state_of(kQp), static_cast<int>(QpState::kShutdownNoMem));
}

}  // namespace
}  // namespace vmci::host

namespace vmci::host {
namespace {

TEST(BrokerLimits, Item6_APairOver128MiBIsNoResourcesBeforeAnyOtherCheck) {
  QueuePairBroker broker{Limits{}};
  std::vector<QpNotice> notices;
  const QpEndpoint host{3, VMCI_HOST_CONTEXT_ID};
  EXPECT_EQ(broker.alloc(host, {VMCI_INVALID_HANDLE, VMCI_INVALID_ID, 0xff, 0, 128 << 20, 1}, &notices).status,
            VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(broker.alloc(host, {VMCI_INVALID_HANDLE, VMCI_INVALID_ID, 0, 0, ~uint64_t{0}, 2}, &notices).status,
            VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(broker.alloc(host, {VMCI_INVALID_HANDLE, VMCI_INVALID_ID, 0, 0, 64 << 20, 64 << 20}, &notices).status,
            VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci::host
