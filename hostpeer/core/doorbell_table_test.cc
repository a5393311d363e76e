#include "core/doorbell_table.h"

#include <gtest/gtest.h>

namespace vmci::host {
namespace {

const DoorbellOwner kVm16Owner{1, 16};
const DoorbellOwner kVm17Owner{2, 17};
const DoorbellOwner kHostOwner{3, VMCI_HOST_CONTEXT_ID};
const DoorbellOwner kRestrictedOwner{4, 18, VMCI_PRIVILEGE_FLAG_RESTRICTED};

const DoorbellNotifier kFromHost{VMCI_HOST_CONTEXT_ID};
const DoorbellNotifier kFromVm16{16};
const DoorbellNotifier kFromVm17{17};

class Doorbells : public ::testing::Test {
 protected:
  DoorbellTable table{Limits{}};
};

TEST_F(Doorbells, ARingComesOutAsTheOwnersBitmapIndex) {
  ASSERT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 5, 0), VMCI_SUCCESS);
  const DoorbellRing ring = table.notify(kFromHost, VMCI_MAKE_HANDLE(16, 1024), 0u);
  EXPECT_EQ(ring.status, VMCI_SUCCESS);
  EXPECT_EQ(ring.peer, kVm16Owner.peer);
  EXPECT_EQ(ring.index, 5u);
  // A guest may ring its own doorbell.
  EXPECT_EQ(table.notify(kFromVm16, VMCI_MAKE_HANDLE(16, 1024), 0u).status, VMCI_SUCCESS);
}

TEST_F(Doorbells, Item30_VmToOtherVmIsDstUnreachable) {
  ASSERT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 0, 0), VMCI_SUCCESS);
  EXPECT_EQ(table.notify(kFromVm17, VMCI_MAKE_HANDLE(16, 1024), 0u).status,
            VMCI_ERROR_DST_UNREACHABLE);
  // Even to a doorbell that does not exist: the VM-to-VM rule comes first.
  EXPECT_EQ(table.notify(kFromVm17, VMCI_MAKE_HANDLE(16, 9999), 0u).status,
            VMCI_ERROR_DST_UNREACHABLE);
}

TEST_F(Doorbells, Item30_ADoorbellTheVmNeverLinkedIsNotFound) {
  EXPECT_EQ(table.notify(kFromHost, VMCI_MAKE_HANDLE(16, 1024), 0u).status, VMCI_ERROR_NOT_FOUND);
  // No such context at all.
  EXPECT_EQ(table.notify(kFromHost, VMCI_MAKE_HANDLE(99, 1024), std::nullopt).status,
            VMCI_ERROR_NOT_FOUND);
  // Unlinked: gone.
  ASSERT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 0, 0), VMCI_SUCCESS);
  ASSERT_EQ(table.unlink(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024)), VMCI_SUCCESS);
  EXPECT_EQ(table.notify(kFromHost, VMCI_MAKE_HANDLE(16, 1024), 0u).status, VMCI_ERROR_NOT_FOUND);
}

TEST_F(Doorbells, InvalidHandlesAndTheHypervisorAreInvalidArgs) {
  EXPECT_EQ(table.notify(kFromHost, VMCI_INVALID_HANDLE, 0u).status, VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(table.notify(kFromVm16, VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, 3), 0u).status,
            VMCI_ERROR_INVALID_ARGS);
  DoorbellNotifier bad_flags = kFromHost;
  bad_flags.caller_priv = 4;
  EXPECT_EQ(table.notify(bad_flags, VMCI_MAKE_HANDLE(16, 1024), 0u).status, VMCI_ERROR_INVALID_ARGS);
}

TEST_F(Doorbells, LinkRules) {
  EXPECT_EQ(table.link(kVm16Owner, VMCI_INVALID_HANDLE, 0, 0), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), kNotifyIndexCount, 0),
            VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(17, 1024), 0, 0), VMCI_ERROR_NO_ACCESS)
      << "a guest cannot link a doorbell in another context's name";
  EXPECT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 0, 0), VMCI_SUCCESS);
  EXPECT_EQ(table.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 1, 0), VMCI_ERROR_DUPLICATE_ENTRY);
  EXPECT_EQ(table.unlink(kVm17Owner, VMCI_MAKE_HANDLE(16, 1024)), VMCI_ERROR_NOT_FOUND)
      << "only its owner unlinks a doorbell";
  EXPECT_EQ(table.unlink(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024)), VMCI_SUCCESS);
  EXPECT_EQ(table.unlink(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024)), VMCI_ERROR_NOT_FOUND);
}

TEST_F(Doorbells, RestrictedAndTrusted) {
  ASSERT_EQ(table.link(kRestrictedOwner, VMCI_MAKE_HANDLE(18, 1024), 0, 0), VMCI_SUCCESS);
  ASSERT_EQ(table.link(kHostOwner, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 2000), 1, 0),
            VMCI_SUCCESS);
  ASSERT_EQ(table.link(kHostOwner, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 2001), 2,
                       VMCI_PRIVILEGE_FLAG_TRUSTED),
            VMCI_SUCCESS);
  const uint32_t restricted = VMCI_PRIVILEGE_FLAG_RESTRICTED;
  // The host rings a restricted guest only with TRUSTED passed by its caller.
  EXPECT_EQ(table.notify(kFromHost, VMCI_MAKE_HANDLE(18, 1024), restricted).status,
            VMCI_ERROR_NO_ACCESS);
  DoorbellNotifier trusted_host = kFromHost;
  trusted_host.caller_priv = VMCI_PRIVILEGE_FLAG_TRUSTED;
  EXPECT_EQ(table.notify(trusted_host, VMCI_MAKE_HANDLE(18, 1024), restricted).status,
            VMCI_SUCCESS);
  // A restricted guest rings only a host doorbell created TRUSTED.
  const DoorbellNotifier from_restricted{18, VMCI_PRIVILEGE_FLAG_RESTRICTED, 0};
  EXPECT_EQ(table.notify(from_restricted, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 2000), 0u).status,
            VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(table.notify(from_restricted, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 2001), 0u).status,
            VMCI_SUCCESS);
  // A guest's caller flags do not count (the notify hypercall carries none).
  DoorbellNotifier claims_trusted = from_restricted;
  claims_trusted.caller_priv = VMCI_PRIVILEGE_FLAG_TRUSTED;
  EXPECT_EQ(table.notify(claims_trusted, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 2000), 0u).status,
            VMCI_ERROR_NO_ACCESS);
  // A host doorbell that does not exist.
  EXPECT_EQ(table.notify(kFromVm16, VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, 7), 0u).status,
            VMCI_ERROR_NOT_FOUND);
}

TEST_F(Doorbells, OwnersDoorbellsGoWithTheirConnectionAndAreCounted) {
  Limits limits;
  limits.max_doorbells_per_context = 2;
  DoorbellTable small(limits);
  EXPECT_EQ(small.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1024), 0, 0), VMCI_SUCCESS);
  EXPECT_EQ(small.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1025), 1, 0), VMCI_SUCCESS);
  EXPECT_EQ(small.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1026), 2, 0), VMCI_ERROR_NO_RESOURCES);
  EXPECT_EQ(small.link(kVm17Owner, VMCI_MAKE_HANDLE(17, 1024), 0, 0), VMCI_SUCCESS);
  small.unlink_all(kVm16Owner.peer);
  EXPECT_EQ(small.count(), 1u);
  EXPECT_EQ(small.count_of(kVm16Owner.peer), 0u);
  EXPECT_EQ(small.link(kVm16Owner, VMCI_MAKE_HANDLE(16, 1026), 2, 0), VMCI_SUCCESS);
}

}  // namespace
}  // namespace vmci::host
