// ivshmem_server.h: this process as the ivshmem server of one QEMU
// `ivshmem-doorbell` device, so the VMCI device can raise MSI-X interrupts
// under TCG (QEMU 7.2's proxy device has no interrupt path there; see
// pci-device/README.md).
//
// QEMU is started with
//   -chardev socket,id=ivs,path=PATH -device ivshmem-doorbell,chardev=ivs,vectors=N
// and connects to PATH while it builds the machine; its realize then blocks
// reading the greeting, so serve() must already run in another thread.
//
// The protocol (QEMU docs/specs/ivshmem-spec.txt, "The ivshmem Client-Server
// Protocol"; hw/misc/ivshmem.c ivshmem_recv_setup, process_msg): one way,
// server to client; each message is a little-endian int64 with at most one
// descriptor (SCM_RIGHTS). The greeting this server sends, one sendmsg per
// message:
//   0            the protocol version;
//   0            the client's peer id (the only client, so the first id);
//   -1 + memfd   the shared memory (QEMU maps it as BAR2; its size must be
//                a power of two, as every BAR's);
//   0 + eventfd  N times: the client's own vector k, k = 0..N-1, in order.
// No other peers are announced. QEMU then watches each eventfd in its main
// loop (no KVM irqfd under TCG: ivshmem.c setup_interrupt ->
// watch_vector_notifier) and on a signal calls msix_notify for vector k
// (ivshmem_vector_notify). notify(k) writes that eventfd.
//
// One client at a time: while one is connected, another is greeted with
// nothing and closed. A client that hangs up (QEMU died) takes its eventfds
// with it: notify() fails until the next client is greeted, with fresh
// eventfds and the shared memory zeroed (a new QEMU is a new guest). A client
// that sends anything breaks the one-way protocol and is dropped. Only the
// same user as this process may connect (SO_PEERCRED; the socket is 0600).
//
// Thread safety: serve() runs in one thread; stop(), notify() and the
// accessors may be called from any thread.
//
//   std::string error;
//   auto server = IvshmemServer::listen("/run/vmci/ivs.sock", {}, log, &error);
//   if (!server) die(error);
//   std::thread t([&] { server->serve(); });
//   ... start QEMU ...
//   server->notify(2);       // QEMU raises ivshmem's MSI-X vector 2
//   server->stop(); t.join();
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace spdlog {
class logger;
}

namespace vmci::pcidev {

struct IvshmemServerOptions {
  uint32_t vectors = 3;        // eventfds per client (QEMU's vectors=N)
  uint64_t shm_size = 4096;    // a power of two, at least 4096
};

class IvshmemServer {
 public:
  // Binds and listens at path. A stale socket left there (nobody accepts on
  // it) is replaced; a live one, or anything else at path, is refused.
  // Returns nullptr with *error set on failure.
  static std::unique_ptr<IvshmemServer> listen(const std::string& path,
                                               IvshmemServerOptions options,
                                               std::shared_ptr<spdlog::logger> log,
                                               std::string* error);
  ~IvshmemServer();  // removes the socket; serve() must have returned
  IvshmemServer(const IvshmemServer&) = delete;
  IvshmemServer& operator=(const IvshmemServer&) = delete;

  // Accepts and greets clients until stop(). Call from one thread only.
  void serve();
  // Makes serve() return soon (from any thread, before or during serve()).
  void stop();

  // Signals vector's eventfd of the connected client. False when no client
  // is greeted, vector >= vectors(), or the write failed (logged).
  bool notify(uint32_t vector);

  // Waits until a client has been greeted; false at timeout.
  bool wait_for_client(std::chrono::milliseconds timeout);
  bool connected() const;
  uint64_t clients_greeted() const { return greeted_.load(); }
  uint32_t vectors() const { return options_.vectors; }
  const std::string& path() const { return path_; }

  // The shared memory as mapped here (what the guest sees at ivshmem's
  // BAR2). Valid for this object's lifetime; the guest may write it at any
  // time, so read it with care (IvshmemInterruptSink reads the bridge's
  // record from it).
  std::span<uint8_t> shared_memory() const { return {shm_, options_.shm_size}; }

 private:
  IvshmemServer(std::string path, IvshmemServerOptions options,
                std::shared_ptr<spdlog::logger> log);
  bool greet(int client);                          // serve()'s thread
  void drop_client(UniqueFd* client, const char* why);  // serve()'s thread

  const std::string path_;
  const IvshmemServerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  UniqueFd listener_;
  bool bound_ = false;   // the socket at path_ is ours
  UniqueFd stop_event_;  // an eventfd: stop() writes it
  UniqueFd shm_fd_;
  uint8_t* shm_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable greeted_cv_;
  std::vector<UniqueFd> eventfds_;  // guarded by mutex_: the client's vectors
  std::atomic<uint64_t> greeted_{0};
};

}  // namespace vmci::pcidev
