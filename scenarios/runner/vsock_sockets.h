// vsock_sockets.h: one actor's vSockets, as the vsock_* scenario ops use
// them: the transport over the actor's connection (opened by the first op
// that needs it), and the listeners, streams and datagram sockets the
// actor's steps made, by the variable each is bound to. Thread-safe: the
// steps of parallel branches may use it at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include "vmci/endpoint.h"
#include "vmci/vsock/datagram_socket.h"
#include "vmci/vsock/transport.h"

namespace vmci::scenario {

class VsockSockets {
 public:
  using Socket = std::variant<std::shared_ptr<vsock::Listener>, std::shared_ptr<vsock::Stream>,
                              std::shared_ptr<vsock::DatagramSocket>>;

  // The transport on `endpoint`, opened on first use; the same one until
  // drop(). Null with `ec` set if it cannot be opened.
  std::shared_ptr<vsock::Transport> transport(Endpoint& endpoint, std::error_code& ec);

  void add(const std::string& name, Socket socket);
  // The socket bound to `name`, or null (never bound, or closed).
  template <typename T>
  std::shared_ptr<T> find(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto it = sockets_.find(name);
    if (it == sockets_.end()) return nullptr;
    const auto* held = std::get_if<std::shared_ptr<T>>(&it->second);
    return held != nullptr ? *held : nullptr;
  }
  // Closes the socket bound to `name`; false if there is none.
  bool close(const std::string& name);
  // The queue pairs of the transport's connections.
  std::vector<vmci_handle> queue_pairs();
  // Closes every socket and the transport (before the connection they use
  // goes).
  void drop();

 private:
  std::mutex mutex_;
  std::shared_ptr<vsock::Transport> transport_;
  std::map<std::string, Socket> sockets_;
};

}  // namespace vmci::scenario
