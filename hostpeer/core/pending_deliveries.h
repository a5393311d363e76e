// pending_deliveries.h: the datagrams hostpeer gave one peer whose
// callbacks have not been reached yet: what the pending cap counts. A peer
// says it reached one either by its delivery id (a kDelivered frame) or,
// if it counts them (frame.h's kFeatureCountedDeliveries), by the number it
// has reached so far, written to its notify memory: then hostpeer settles
// that count before it looks. Counts are claims of an untrusted peer: a
// count beyond what was given retires everything and is reported, never
// trusted further. No I/O; not thread-safe: the hypervisor core serialises
// calls.
//
//   PendingDeliveries pending(/*counted=*/true);
//   pending.add(1, 64);
//   pending.add(2, 64);
//   pending.settle(1);   // the peer reached one: id 1 is no longer pending
//   // pending.count() == 1, pending.bytes() == 64
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>

namespace vmci::host {

class PendingDeliveries {
 public:
  explicit PendingDeliveries(bool counted) : counted_(counted) {}

  // Delivery `id` (new) of `bytes` was handed to the peer.
  void add(uint32_t id, uint64_t bytes);
  // The peer reached delivery `id`; false if it was not pending.
  bool take(uint32_t id);
  // A counting peer says it has reached `reached` deliveries in all (mod
  // 2^32): those it had not said before, oldest first, are no longer
  // pending. False if that is more than were pending (all are retired then,
  // and later counts go on from `reached`). Ignored for peers that do not count.
  bool settle(uint32_t reached);

  bool counted() const { return counted_; }
  size_t count() const { return bytes_of_.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  bool counted_;
  std::unordered_map<uint32_t, uint64_t> bytes_of_;  // by delivery id
  std::deque<uint32_t> order_;                       // counted peers: ids as given
  uint32_t reached_ = 0;                             // the count settled so far
  uint64_t bytes_ = 0;
};

}  // namespace vmci::host
