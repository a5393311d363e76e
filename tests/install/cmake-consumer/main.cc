// An embedded hostpeer with a host endpoint, and a guest connecting to it
// over its socket: a datagram each way.
#include <vmci/guest/driver.h>
#include <vmci/host/hostpeer.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  vmci::host::Options options;
  options.socket_path = argv[1];
  std::string error;
  auto hostpeer = vmci::host::HostPeer::start(options, &error);
  if (!hostpeer) {
    std::fprintf(stderr, "start: %s\n", error.c_str());
    return 1;
  }
  std::promise<std::string> got;
  auto host = hostpeer->connect_host();
  vmci_handle service;
  host->datagram_create_handle(
      4242, 0, 0,
      [&](vmci_datagram* dg) {
        got.set_value(std::string(static_cast<char*>(VMCI_DG_PAYLOAD(dg)), dg->payload_size));
        return 0;
      },
      &service);

  int status;
  auto vm = vmci::guest::Driver::connect({.socket_path = argv[1]}, &status, &error);
  if (!vm) {
    std::fprintf(stderr, "connect: %s\n", error.c_str());
    return 1;
  }
  vmci_handle me;
  vm->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; }, &me);
  std::vector<char> buf(sizeof(vmci_datagram) + 5);
  auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
  *dg = vmci_datagram{service, me, 5};
  std::memcpy(VMCI_DG_PAYLOAD(dg), "hello", 5);
  const int sent = vm->datagram_send(dg);
  auto text = got.get_future();
  if (sent != 29 || text.wait_for(std::chrono::seconds(5)) != std::future_status::ready ||
      text.get() != "hello") {
    std::fprintf(stderr, "datagram did not arrive (send returned %d)\n", sent);
    return 1;
  }
  std::printf("cmake consumer: guest context %u reached the embedded host endpoint\n",
              vm->get_context_id());
  vm.reset();
  host.reset();
  return 0;
}
