// descriptor_budget.h: the descriptors hostpeer holds for frames its peers
// have not read yet (a queue pair's memory with its result, a ring
// channel with its grant, notify memory with the welcome). Each takes a
// slot of hostpeer's own descriptor table until the peer reads its frame,
// so a peer that never reads could otherwise fill the table and stop every
// connection and every allocation on the machine.
//
// Two bounds: one peer may hold at most `per_peer` such descriptors, and
// all peers together at most `total`. What is left of the table is the
// reserve for accepting connections and for what well-behaved peers hold
// (sockets, pairs, channels). A peer over its own bound is cut off by its
// session; when all together would pass the total, the peer holding the
// most is cut off (a peer that reads its socket holds next to none).
//
// Not thread-safe: the sessions' I/O thread owns it.
//
//   DescriptorBudget budget(DescriptorBudget::for_descriptor_limit(20000));
//   if (!budget.admit(session, held + 2)) session->cut_off("...");
//   budget.hold(session, 0);  // the session is gone
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace vmci::host {

// What holds descriptors for a peer: its session.
class DescriptorHolder {
 public:
  virtual ~DescriptorHolder() = default;
  // Ends the peer's connection at once, dropping what it has not read, and
  // holds nothing from then on.
  virtual void cut_off(const std::string& reason) = 0;
};

class DescriptorBudget {
 public:
  struct Bounds {
    size_t per_peer;
    size_t total;
  };
  // Enough for a host connection that owns every ring channel it may
  // (120) and is granted them all at once, with results besides.
  static constexpr size_t kPerPeer = 256;
  // The bounds for a process allowed `limit` descriptors (RLIMIT_NOFILE):
  // a quarter of them in total, kPerPeer per peer (at most a quarter of
  // the total).
  static Bounds for_descriptor_limit(size_t limit);

  explicit DescriptorBudget(Bounds bounds) : bounds_(bounds) {}

  // Records that `peer` holds `count` descriptors from now on if the bounds
  // allow it: true. False if `count` is over the peer's bound, or if all
  // together would pass the total and `peer` holds the most; before that,
  // greedier peers are cut off until the total allows `count`.
  bool admit(DescriptorHolder* peer, size_t count);
  // `peer` holds `count` descriptors now, fewer than before (0: none).
  void hold(DescriptorHolder* peer, size_t count);

  size_t held(DescriptorHolder* peer) const;
  size_t total_held() const { return total_; }
  const Bounds& bounds() const { return bounds_; }

 private:
  DescriptorHolder* greediest() const;

  const Bounds bounds_;
  std::map<DescriptorHolder*, size_t> held_;  // peers holding any
  size_t total_ = 0;
};

}  // namespace vmci::host
