#include "runner/vsock_sockets.h"

namespace vmci::scenario {

std::shared_ptr<vsock::Transport> VsockSockets::transport(Endpoint& endpoint, std::error_code& ec) {
  std::lock_guard lock(mutex_);
  ec.clear();
  if (!transport_) {
    vsock::TransportOptions options;
    options.log = [](const std::string&) {};  // what a hostile peer sends is not a scenario's
    transport_ = vsock::Transport::open(endpoint, std::move(options), ec);
  }
  return transport_;
}

void VsockSockets::add(const std::string& name, Socket socket) {
  std::lock_guard lock(mutex_);
  sockets_[name] = std::move(socket);
}

bool VsockSockets::close(const std::string& name) {
  Socket socket;
  {
    std::lock_guard lock(mutex_);
    auto it = sockets_.find(name);
    if (it == sockets_.end()) return false;
    socket = std::move(it->second);
    sockets_.erase(it);
  }
  // A call of another branch may still hold it: close it now, for all.
  std::visit(
      [](auto& held) {
        using T = typename std::decay_t<decltype(held)>::element_type;
        if constexpr (!std::is_same_v<T, vsock::DatagramSocket>) held->close();
      },
      socket);
  return true;
}

std::vector<vmci_handle> VsockSockets::queue_pairs() {
  std::shared_ptr<vsock::Transport> transport;
  {
    std::lock_guard lock(mutex_);
    transport = transport_;
  }
  return transport ? transport->queue_pairs() : std::vector<vmci_handle>{};
}

void VsockSockets::drop() {
  std::map<std::string, Socket> sockets;
  std::shared_ptr<vsock::Transport> transport;
  {
    std::lock_guard lock(mutex_);
    sockets.swap(sockets_);
    transport.swap(transport_);
  }
  sockets.clear();
}

}  // namespace vmci::scenario
