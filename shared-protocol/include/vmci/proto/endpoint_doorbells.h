// endpoint_doorbells.h: an endpoint's own doorbells (spec §5.1, §5.4): each
// handle with its notify index (from NotifyIndexes) and callback, and the
// scan of the connection's notify memory, and of the ring-channel slots
// hostpeer granted its ringers (vmci/proto/ring_channel.h), that finds whose
// callbacks to run. Shared by the guest driver and embedded host endpoints.
//
// Thread-safe. Callbacks never run under its lock: run() marks one as
// running, and remove() waits for a running callback of the handle it
// removes (unless called from inside it).
//
//   const uint64_t index = doorbells.reserve_index();
//   doorbells.insert(handle, index, [] { ... });   // then link it, then:
//   doorbells.activate(handle);
//   for (auto& rung : doorbells.take_rung(memory)) doorbells.run(rung);
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "vmci/proto/notify_indexes.h"
#include "vmci/proto/notify_memory.h"
#include "vmci/proto/ring_channel.h"
#include "vmci/vmci_defs.h"

namespace vmci::proto {

class EndpointDoorbells {
 public:
  using Callback = std::function<void()>;
  struct Rung {
    vmci_handle handle;
    std::shared_ptr<Callback> callback;
  };

  // A notify index for a doorbell about to be made (§5.3); give it back
  // with release_index() if the doorbell is not made.
  uint64_t reserve_index();
  void release_index(uint64_t index);
  // An inactive doorbell on a reserved index: its rings wait until
  // activate() (a guest's is active only once its link succeeded).
  // VMCI_ERROR_ALREADY_EXISTS if the handle is taken.
  int insert(vmci_handle handle, uint64_t index, Callback callback);
  void activate(vmci_handle handle);
  // VMCI_ERROR_NOT_FOUND if unknown. Waits for a running callback of it,
  // unless `from_callback` (the caller is that callback's thread).
  int remove(vmci_handle handle, bool from_callback, uint64_t* index = nullptr);
  bool contains(vmci_handle handle) const;
  size_t size() const;

  // A ring-channel slot hostpeer granted a ringer of `handle`: its rings
  // count as the doorbell's (once active) until the doorbell or the channel
  // goes. False (nothing kept) if there is no such doorbell here. A stale
  // grant (one that crossed the doorbell's destruction and re-creation) is
  // harmless: hostpeer revoked its slot, and a slot granted anew has
  // another generation.
  bool add_grant(vmci_handle handle, uint32_t channel_id, std::shared_ptr<RingChannel> channel,
                 uint32_t slot, uint32_t generation);
  // The channel is closed: its grants go.
  void drop_channel(uint32_t channel_id);

  // Takes the rung byte of every index that has an active doorbell, and
  // every granted slot, and returns the doorbells rung: all of them on a
  // shared index (§5.4), each once however many rings.
  std::vector<Rung> take_rung(NotifyMemory* memory);
  // Runs one callback, unless its doorbell was removed meanwhile.
  void run(const Rung& rung);

 private:
  struct Grant {
    uint32_t channel_id;
    std::shared_ptr<RingChannel> channel;
    uint32_t slot;
    uint32_t generation;
  };
  struct Doorbell {
    vmci_handle handle;
    uint64_t index;
    bool active;
    std::shared_ptr<Callback> callback;
    std::vector<Grant> grants;
  };

  mutable std::mutex mutex_;
  std::condition_variable finished_;
  NotifyIndexes indexes_;
  std::map<uint64_t, Doorbell> doorbells_;  // by handle key
  const Callback* running_ = nullptr;
};

}  // namespace vmci::proto
