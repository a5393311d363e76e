// Spec §11 item 32 end to end: an embedded hostpeer moves a guest to a new
// context id (as a migration would); the guest driver takes the new id from
// CTX_ID_UPDATE.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"

namespace vmci::testing {
namespace {

TEST(ContextUpdate, Item32_CtxIdUpdateReplacesTheCachedContextId) {
  EmbeddedHostpeer hostpeer;
  std::string error;

  int status;
  auto vm = guest::Driver::connect({.socket_path = hostpeer.socket_path(), .context_id = 60}, &status,
                                   &error);
  ASSERT_TRUE(vm) << error;
  EXPECT_EQ(vm->get_context_id(), 60u);
  std::promise<vmci_id> updated;
  vmci_id sub;
  ASSERT_EQ(
      vm->event_subscribe(
          VMCI_EVENT_CTX_ID_UPDATE,
          [&](vmci_id, vmci_event_data* ed) {
            updated.set_value(
                static_cast<vmci_event_payload_context*>(vmci_event_data_payload(ed))->context_id);
          },
          &sub),
      VMCI_SUCCESS);

  ASSERT_EQ(hostpeer->update_context_id(60, 61), VMCI_SUCCESS);
  auto event = updated.get_future();
  ASSERT_EQ(event.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(event.get(), 61u);
  EXPECT_EQ(vm->get_context_id(), 61u);

  // Handles made after the move carry the new id, and datagrams flow.
  auto host = hostpeer->connect_host();
  vmci_handle service, me;
  std::promise<vmci_handle> from;
  host->datagram_create_handle(
      4242, 0, 0,
      [&](vmci_datagram* dg) {
        from.set_value(dg->src);
        return 0;
      },
      &service);
  ASSERT_EQ(vm->datagram_create_handle(
                VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &me),
            VMCI_SUCCESS);
  EXPECT_EQ(me.context, 61u);
  const vmci_datagram dg{service, me, 0};
  EXPECT_EQ(vm->datagram_send(&dg), 24);
  auto src = from.get_future();
  ASSERT_EQ(src.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(src.get().context, 61u);
  EXPECT_EQ(hostpeer->update_context_id(60, 62), VMCI_ERROR_NOT_FOUND);
  host.reset();
  vm.reset();
}

}  // namespace
}  // namespace vmci::testing
