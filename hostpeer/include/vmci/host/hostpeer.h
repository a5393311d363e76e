// hostpeer.h: a hostpeer inside your own process.
//
// HostPeer owns the hypervisor core and, when given a socket path, the
// control-socket server on its own I/O thread. A device proxy embeds one and
// takes host endpoints from it directly, without a socket; guests reach it
// through the socket. A HostPeer is an ordinary object: a process may run
// several, each on its own socket.
//
//   vmci::host::Options options;
//   options.socket_path = "/tmp/my-proxy.sock";
//   std::string error;
//   auto peer = vmci::host::HostPeer::start(options, &error);
//   if (!peer) { fprintf(stderr, "%s\n", error.c_str()); return 1; }
//   std::unique_ptr<vmci::Endpoint> host = peer->connect_host();
//   host->datagram_create_handle(4242, 0, 0, on_datagram, &handle);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vmci/endpoint.h"
#include "vmci/host/limits.h"
#include "vmci/host/stats.h"
#include "vmci/introspection.h"

namespace vmci::host {

// How much a message of hostpeer's matters, least first.
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// Receives hostpeer's messages: one line each, without a newline or a time
// stamp. Called on hostpeer's threads (its I/O thread, the thread of an
// embedded endpoint's call), one call at a time, so it needs no lock of
// its own; it must not call the HostPeer. For example, to stderr:
//
//   options.log = [](vmci::host::LogLevel level, std::string_view message) {
//     std::fprintf(stderr, "hostpeer %d: %.*s\n", static_cast<int>(level),
//                  static_cast<int>(message.size()), message.data());
//   };
using LogCallback = std::function<void(LogLevel level, std::string_view message)>;

struct Options {
  // Empty: no socket server, embedded endpoints only.
  std::string socket_path;
  // >= 0: a listening Unix stream socket to serve instead of creating one
  // at socket_path (socket activation). HostPeer owns it from start() on,
  // even if start() fails, and never removes its file.
  int listening_socket = -1;
  Limits limits;
  // Users, besides hostpeer's own, that may connect as guests.
  std::vector<uid_t> guest_uids;
  // Users, besides hostpeer's own, that may connect as hosts (or guests).
  // The socket file lets the users of both lists open it by a POSIX ACL;
  // hostpeer does not start if that ACL cannot be set. The directories
  // above the socket must let them search: hostpeer warns of each user one
  // keeps out, and changes no directory.
  std::vector<uid_t> host_uids;
  // Non-empty: every request hostpeer serves (with its result), every
  // delivery and every peer that comes and goes is appended to this file
  // as JSON Lines, for `vmci-scenario record` (README, "Recording").
  std::string trace_path;
  // Non-empty: the same, and every datagram whole (payloads included), is
  // written to this file (created or truncated, mode 0600) as pcapng for
  // Wireshark (docs/CAPTURE.md).
  std::string capture_path;
  // Non-empty: GET /metrics is served on this ADDR:PORT (127.0.0.1:9464,
  // [::1]:9464; port 0 picks one, see metrics_address()) in Prometheus's
  // text format, from a thread of its own, each scrape one introspect()
  // (docs/INTROSPECTION.md, "Prometheus metrics"). Another address than a
  // loopback one is served with a warning in the log: anyone who reaches
  // it sees every context's figures.
  std::string metrics_address;
  // Where hostpeer logs what it refuses and what happens; empty: nowhere.
  LogCallback log;
  // The least level passed to `log`; messages below it are not even made.
  LogLevel log_level = LogLevel::kInfo;
  // A connection that has not said hello this long after it was accepted
  // is closed (it holds a descriptor of hostpeer's).
  std::chrono::milliseconds hello_deadline{10000};
};

class HostPeer {
 public:
  // Starts hostpeer; null with *error set if it cannot (the socket path is
  // in use by a live hostpeer, say). A stale socket file is replaced.
  static std::unique_ptr<HostPeer> start(const Options& options, std::string* error);
  // Stops serving, closes every connection and removes the socket file.
  ~HostPeer();

  HostPeer(const HostPeer&) = delete;
  HostPeer& operator=(const HostPeer&) = delete;

  const std::string& socket_path() const;
  // A new host connection (context 2) inside this process; it owns what it
  // creates, and its resources go when it is destroyed. It must be
  // destroyed before the HostPeer.
  std::unique_ptr<Endpoint> connect_host();
  // Gives the guest context `old_cid` the id `new_cid`, as a migration
  // would, and sends it VMCI_EVENT_CTX_ID_UPDATE. Returns VMCI_SUCCESS,
  // VMCI_ERROR_NOT_FOUND (no such guest), VMCI_ERROR_INVALID_ARGS (a
  // reserved id) or VMCI_ERROR_ALREADY_EXISTS (the new id is in use).
  int update_context_id(vmci_id old_cid, vmci_id new_cid);
  // Counts of what hostpeer holds now.
  Stats stats() const;
  // What it holds, connection by connection, pair by pair (the snapshot
  // `vmci-ctl` shows for a daemon; vmci/introspection.h).
  Introspection introspect() const;
  // Where the metrics are served, with the port it got
  // ("127.0.0.1:40123"); empty when Options::metrics_address was.
  const std::string& metrics_address() const;

 private:
  HostPeer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmci::host
