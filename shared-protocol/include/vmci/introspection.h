// introspection.h: a snapshot of what a running hostpeer holds, for people
// and tools looking inside it (vmci-ctl, an embedded proxy's own status
// page). An embedded hostpeer returns one from HostPeer::introspect(); a
// daemon sends one to a host connection that asks (frame.h's kIntrospect,
// protocol 2.2), as the JSON that to_json() writes and
// parse_introspection() reads. The JSON's "format" is kIntrospectionFormat;
// a reader refuses another major format and ignores keys it does not know.
//
//   vmci::Introspection snap = peer->introspect();
//   for (const auto& c : snap.contexts) printf("%u %lu\n", c.cid, c.datagrams_sent);
//
// What hostpeer cannot see is not here: datagrams and rings that went
// through a granted fast-path lane (counted by the endpoints), and event
// subscriptions (kept by each endpoint, as a VMCI guest's are kept by its
// driver): `events_received` counts what hostpeer delivered instead.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vmci/role.h"
#include "vmci/stats.h"
#include "vmci/vmci_defs.h"

namespace vmci {

inline constexpr uint32_t kIntrospectionFormat = 1;

// One connection to hostpeer: a guest context, or a host connection
// (context 2; several may be connected, told apart by `connection`).
struct ContextInfo {
  uint64_t connection = 0;  // hostpeer's number for it, from 1, never reused
  vmci_id cid = VMCI_INVALID_ID;
  Role role = Role::kGuest;
  uint32_t priv_flags = 0;
  int64_t pid = 0;  // the peer's process (0: not known)
  int64_t uid = -1;  // its user (-1: not known)
  int64_t since_unix_ms = 0;  // when hostpeer admitted it
  // Datagrams hostpeer took from it (hypercalls included) and how many of
  // those it refused; what it delivered to it.
  uint64_t datagrams_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t refused = 0;
  uint64_t datagrams_received = 0;
  uint64_t bytes_received = 0;
  uint64_t pending_datagrams = 0;  // delivered, callback not yet run
  uint64_t pending_bytes = 0;
  // How it tells hostpeer its callbacks ran: a count in its notify memory
  // (protocol 2.5's counted deliveries), or a `delivered` frame each.
  bool deliveries_counted = false;
  // Event datagrams hostpeer delivered to it, by event name
  // ("CTX_REMOVED", "QP_PEER_ATTACH", ...: vmci/proto/names.h).
  std::map<std::string, uint64_t> events_received;
};

// One queue of a pair: its size and the bytes in it now (read from the
// queue headers: producer_tail minus the consumer's head).
struct QueueFill {
  uint64_t size = 0;
  uint64_t used = 0;
};

struct PairInfo {
  vmci_handle handle = VMCI_INVALID_HANDLE;
  uint32_t flags = 0;
  std::string state;  // "created", "attached", "shutdown", each "-mem" or "-no-mem"
  vmci_id creator_cid = VMCI_INVALID_ID;
  uint64_t creator_connection = 0;
  vmci_id attacher_cid = VMCI_INVALID_ID;  // VMCI_INVALID_ID: nobody attached yet
  uint64_t attacher_connection = 0;
  bool guest_pages = false;  // the memory is a guest's own pages
  // The creator's produce queue (the attacher's consume queue) and the
  // other; used is 0 while no memory is there to read.
  QueueFill creator_to_attacher;
  QueueFill attacher_to_creator;
};

struct DoorbellInfo {
  vmci_handle handle = VMCI_INVALID_HANDLE;
  uint64_t owner_connection = 0;
  vmci_id owner_cid = VMCI_INVALID_ID;
  uint64_t notify_index = 0;
  uint32_t priv_flags = 0;
  uint64_t rings = 0;              // rings hostpeer passed on
  uint64_t fast_path_grants = 0;   // ring-channel slots granted for it now
};

// A host connection's datagram handle.
struct HandleInfo {
  vmci_handle handle = VMCI_INVALID_HANDLE;
  uint64_t owner_connection = 0;
  uint32_t flags = 0;
  uint32_t priv_flags = 0;
  uint64_t fast_path_grants = 0;  // datagram lanes granted now: to it, and from it to guests
};

struct Introspection {
  uint32_t format = kIntrospectionFormat;
  std::string version;          // hostpeer's (e.g. "0.9.0")
  std::string protocol;         // its control protocol ("2.3")
  int64_t started_unix_ms = 0;  // when this hostpeer started
  int64_t now_unix_ms = 0;      // when the snapshot was taken
  std::map<std::string, uint64_t> limits;  // Limits, by field name
  Stats stats;
  // Connections admitted since hostpeer started (guests and hosts).
  uint64_t connections_admitted = 0;
  // Datagrams and hypercalls hostpeer answered with an error since it
  // started, by status name ("VMCI_ERROR_NO_ACCESS", ...: vmci/proto/names.h,
  // or the number for a code without a name); the sum of every
  // connection's `refused`, those of connections gone included.
  std::map<std::string, uint64_t> refusals_by_status;
  // Fast-path grants hostpeer refused since it started, by the bound
  // reached ("owner_channels": the owner's 120 ring channels,
  // "ringer_channels": the ringer's 1024, "slots": a channel's slots,
  // "memory": no page); those rings and datagrams went through hostpeer.
  std::map<std::string, uint64_t> ring_channel_refusals;
  std::vector<ContextInfo> contexts;
  std::vector<PairInfo> pairs;
  std::vector<DoorbellInfo> doorbells;
  std::vector<HandleInfo> handles;
};

// The JSON form (docs/INTROSPECTION.md lists every key).
std::string to_json(const Introspection& snapshot);
// False with *error for text that is not JSON, or of another major format.
bool parse_introspection(std::string_view json, Introspection* out, std::string* error);

}  // namespace vmci
