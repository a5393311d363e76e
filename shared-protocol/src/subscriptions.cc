#include "vmci/proto/subscriptions.h"

#include <algorithm>

namespace vmci::proto {

int EventSubscriptions::subscribe(uint32_t event, EventCallback callback, vmci_id* sub_id) {
  if (sub_id == nullptr || !VMCI_EVENT_VALID(event) || !callback) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  if (entries_.size() >= kMaxSubscriptions) return VMCI_ERROR_NO_RESOURCES;
  // Ids come from one counter, pre-incremented; a collision (after the
  // counter wrapped) is retried a few times, as the drivers do.
  for (int attempt = 0; attempt < 10; ++attempt) {
    const vmci_id id = ++last_id_;
    const bool taken =
        std::any_of(entries_.begin(), entries_.end(), [id](const Entry& e) { return e.id == id; });
    if (!taken && id != VMCI_INVALID_ID) {
      entries_.push_back(Entry{id, event, std::move(callback)});
      *sub_id = id;
      return VMCI_SUCCESS;
    }
  }
  return VMCI_ERROR_NO_RESOURCES;
}

int EventSubscriptions::unsubscribe(vmci_id sub_id) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [sub_id](const Entry& e) { return e.id == sub_id; });
  if (it == entries_.end()) return VMCI_ERROR_NOT_FOUND;
  entries_.erase(it);
  return VMCI_SUCCESS;
}

bool EventSubscriptions::contains(vmci_id sub_id) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [sub_id](const Entry& e) { return e.id == sub_id; });
}

std::vector<EventSubscriptions::Subscriber> EventSubscriptions::subscribers(uint32_t event) const {
  std::vector<Subscriber> out;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->event == event) out.push_back(Subscriber{it->id, it->callback});
  }
  return out;
}

}  // namespace vmci::proto
