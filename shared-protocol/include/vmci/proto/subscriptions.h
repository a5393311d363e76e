// subscriptions.h: an endpoint's table of event subscriptions (spec §7.3).
//
// Subscriptions live with the endpoint, not in the hypervisor: hostpeer
// sends every event a context should get, and the endpoint's table decides
// which callbacks run. Not thread-safe: the owner serialises calls.
//
//   EventSubscriptions subs;
//   vmci_id id;
//   subs.subscribe(VMCI_EVENT_CTX_REMOVED, cb, &id);   // id == 1
//   for (auto& s : subs.subscribers(VMCI_EVENT_CTX_REMOVED)) s.callback(s.id, ed);
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "vmci/vmci_call_defs.h"

namespace vmci::proto {

// Called with the subscription id and the event data; the payload follows it.
using EventCallback = std::function<void(vmci_id sub_id, vmci_event_data* ed)>;

class EventSubscriptions {
 public:
  struct Subscriber {
    vmci_id id;
    EventCallback callback;
  };

  // Subscriptions one endpoint may hold; beyond them subscribe() is
  // VMCI_ERROR_NO_RESOURCES.
  static constexpr size_t kMaxSubscriptions = 4096;

  // VMCI_ERROR_INVALID_ARGS for a null sub_id, an event that is not
  // VMCI_EVENT_VALID or an empty callback; *sub_id is left alone then
  // (FreeBSD). Ids count up from 1 across all event types.
  int subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id);
  // VMCI_ERROR_NOT_FOUND if there is no such subscription.
  int unsubscribe(vmci_id sub_id);
  // The subscribers of `event`, most recent first (as both drivers).
  std::vector<Subscriber> subscribers(uint32_t event) const;
  bool contains(vmci_id sub_id) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    vmci_id id;
    uint32_t event;
    EventCallback callback;
  };
  std::vector<Entry> entries_;  // in subscription order
  vmci_id last_id_ = 0;
};

}  // namespace vmci::proto
