// datagram_socket.h: vSockets datagram sockets (SOCK_DGRAM) over one VMCI
// endpoint, as Linux's VMCI transport has them: each socket is one VMCI
// datagram handle and its port is the handle's resource id; a datagram on
// the wire is a bare VMCI datagram (no vsock header), at most 69608 bytes
// of payload. Delivery is best effort: a datagram that finds the socket's
// receive queue full is dropped, as a kernel socket drops it.
//
//   std::error_code ec;
//   auto s = vmci::vsock::DatagramSocket::bind(endpoint, {kCidAny, 3000}, ec);
//   s->send_to("ping", 4, {VMCI_HOST_CONTEXT_ID, 4000}, ec);
//   Address from;
//   size_t n = s->receive_from(buf, sizeof buf, &from, std::chrono::seconds(1), ec);
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include "vmci/endpoint.h"
#include "vmci/vsock/capture.h"
#include "vmci/vsock/transport.h"

namespace vmci::vsock {

// The largest datagram payload (VMCI_MAX_DG_SIZE less its header).
inline constexpr size_t kMaxDatagramPayload = 69608;

class DatagramSocket {
 public:
  // Bytes of datagrams a socket keeps for its reader before it drops new
  // ones (a kernel socket's default receive buffer).
  static constexpr size_t kDefaultReceiveBytes = 212992;

  // Binds to `local` on `endpoint` (which must outlive the socket): port
  // kPortAny lets VMCI pick a free resource id from 1024 up; cid kCidAny
  // (or the endpoint's own) makes an any-context handle. EADDRINUSE if the
  // port is taken, EADDRNOTAVAIL for another context's id. `capture`:
  // where each datagram sent and each taken is recorded (op PAYLOAD,
  // vmci/vsock/capture.h); null: nowhere.
  static std::unique_ptr<DatagramSocket> bind(Endpoint& endpoint, Address local,
                                              std::error_code& ec,
                                              size_t receive_bytes = kDefaultReceiveBytes,
                                              std::shared_ptr<Capture> capture = nullptr);
  ~DatagramSocket();
  DatagramSocket(const DatagramSocket&) = delete;
  DatagramSocket& operator=(const DatagramSocket&) = delete;

  Address local_address() const;

  // Sends one datagram; returns `size`. EMSGSIZE above kMaxDatagramPayload;
  // EINVAL to the hypervisor except its port 14, or to kPortAny; VMCI's
  // errors as errors.h maps them (EPERM between a restricted guest and an
  // untrusted host, ENOBUFS when the receiver's pending queue is full).
  // Context kCidAny means this endpoint's own context.
  size_t send_to(const void* buf, size_t size, Address to, std::error_code& ec);
  // connect(): the default peer of send(); an address of kCidAny and
  // kPortAny clears it.
  void connect(Address peer);
  // To the default peer: EINVAL (as Linux) when there is none.
  size_t send(const void* buf, size_t size, std::error_code& ec);

  // Takes the next datagram: copies at most `size` bytes of its payload,
  // sets *from (if given) to its source and *truncated (if given) when it
  // was longer. Returns the bytes copied. EAGAIN when the timeout passes
  // (zero: do not wait). `peek` leaves the datagram queued.
  size_t receive_from(void* buf, size_t size, Address* from, Timeout timeout, std::error_code& ec,
                      bool* truncated = nullptr, bool peek = false);
  // Ends the socket's receiving: a receive_from() waiting now or called
  // later fails with EBADF once nothing is queued. Sending still works
  // until the socket is destroyed.
  void close();

  // Datagrams queued, and the size of the next one's payload (0: none).
  size_t queued() const;
  size_t next_size() const;
  // Datagrams dropped because the receive queue was full.
  uint64_t dropped() const;

 private:
  struct Received {
    Address from;
    std::vector<uint8_t> payload;
  };
  DatagramSocket(Endpoint& endpoint, size_t receive_bytes, std::shared_ptr<Capture> capture);
  int deliver(const vmci_datagram* dg);

  Endpoint& endpoint_;
  const size_t receive_bytes_;
  const std::shared_ptr<Capture> capture_;
  vmci_handle handle_ = VMCI_INVALID_HANDLE;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<Received> queue_;
  size_t queued_bytes_ = 0;
  uint64_t dropped_ = 0;
  bool closed_ = false;
  Address peer_;
};

}  // namespace vmci::vsock
