// broker.h: the vSockets of one program and everything it starts, served
// to their processes. The broker holds the VMCI endpoint (a guest context
// or a host connection) and its vSockets Transport; a program's vSockets
// descriptor is one end of a socketpair whose other end the broker holds
// (broker_protocol.h). For a connected stream the broker pumps bytes
// between its end and the connection; the kernel gives the program's end
// its readiness (poll, select, epoll), its end of stream and its EPIPE:
// the broker shuts its end down as the peer shuts the connection down.
//
//   Broker broker(endpoint, dir + "/broker.sock");
//   if (!broker.start(&error)) ...;
//   // the program runs with VMCI_VSOCK_BROKER=<that path>
#pragma once

#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker_protocol.h"
#include "vmci/endpoint.h"
#include "vmci/vsock/datagram_socket.h"
#include "vmci/vsock/transport.h"

namespace vmci::vsock_run {

struct BrokerSocket;
struct SocketTable;

class Broker {
 public:
  // `endpoint` must outlive the broker. `capture`: where its vSockets'
  // packets and stream bytes are recorded (vmci/vsock/capture.h); null: nowhere.
  Broker(Endpoint& endpoint, std::string socket_path,
         std::shared_ptr<vsock::Capture> capture = nullptr);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Opens vSockets on the endpoint and listens on the socket path.
  bool start(std::string* error);
  const std::string& socket_path() const { return socket_path_; }

  // Waits until every connected stream has passed on what its program
  // wrote: nothing left unread in the broker's end of its socketpair and
  // nothing in its pump's hands (or its pump is over). For the launcher once
  // its program has exited: a kernel socket's write would have put those
  // bytes into the queue pair before the program could exit, so its peer
  // must still get them. Gives up when `stall` passes without the peers
  // taking a byte, and then returns one line per stream still holding
  // bytes (its addresses, the bytes, and the room its queue pair shows),
  // which the launcher reports: those bytes are lost. Empty when all passed.
  // Gives up the same way, at once, once `*give_up` is set (a signal
  // handler's flag; null: never).
  std::vector<std::string> drain(std::chrono::milliseconds stall,
                                 const volatile std::sig_atomic_t* give_up = nullptr) const;

 private:
  void serve();                      // the accept loop of the control socket
  void answer(int connection);       // one request
  Reply handle(const Request& request, const uint8_t* payload, size_t payload_size, int attached,
               int* reply_fd);
  // A new socket: the broker's end in the table, the program's end named
  // and returned in *program_end; its watch ends it when the program
  // closes its end.
  std::shared_ptr<BrokerSocket> make_socket(int type, int* program_end, int* error);

  Reply bind(const std::shared_ptr<BrokerSocket>& s, const Request& r);
  Reply listen(const std::shared_ptr<BrokerSocket>& s, const Request& r);
  Reply connect(const std::shared_ptr<BrokerSocket>& s, const Request& r, int program_end);
  Reply accept(BrokerSocket& s, int* reply_fd);
  Reply get_option(BrokerSocket& s, const Request& r);
  Reply set_option(BrokerSocket& s, const Request& r);
  Reply shutdown(BrokerSocket& s, const Request& r);
  Reply send_to(const std::shared_ptr<BrokerSocket>& s, const Request& r, const uint8_t* payload,
                size_t size);
  // The datagram socket of `s`, bound to any port (and receiving) if it was
  // not bound yet.
  std::shared_ptr<vsock::DatagramSocket> datagram_socket(const std::shared_ptr<BrokerSocket>& s,
                                                         int* error);

  Endpoint& endpoint_;
  const std::string socket_path_;
  const std::shared_ptr<vsock::Capture> capture_;
  std::shared_ptr<vsock::Transport> transport_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd: the accept loop ends when it is signalled
  std::thread server_;
  // Shared with the threads of the sockets, which may outlive the broker.
  std::shared_ptr<SocketTable> table_;
};

}  // namespace vmci::vsock_run
