// vsock_packet_fuzzer: vSockets' control-packet handler
// (vmci::vsock::Transport::receive) fed sequences of datagrams from hostile
// guests: any bytes, lengths, sources and ports, against a transport that
// listens on a few ports. Whatever arrives, it must not crash, hang or
// read out of bounds, and what it holds stays bounded: every half-open
// connection it made for a request is gone once its timeout passed.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.h"
#include "vmci/host/hostpeer.h"
#include "vmci/vsock/transport.h"

namespace {

using vmci::fuzz::check;
using vmci::fuzz::Input;
using namespace vmci::vsock;

// A hostpeer without a socket, its host endpoint and vSockets on it, made
// once: listeners on ports 1, 2 and 1234, half-open connections dropped at
// once.
struct World {
  World() {
    std::string error;
    hostpeer = vmci::host::HostPeer::start({}, &error);
    host = hostpeer->connect_host();
    TransportOptions options;
    options.log = [](const std::string&) {};
    options.pending_timeout = std::chrono::milliseconds(0);
    std::error_code ec;
    vsock = Transport::open(*host, options, ec);
    for (uint32_t port : {1u, 2u, 1234u}) listeners.push_back(vsock->listen(port, 2, ec));
  }
  std::unique_ptr<vmci::host::HostPeer> hostpeer;
  std::unique_ptr<vmci::Endpoint> host;
  std::shared_ptr<Transport> vsock;
  std::vector<std::unique_ptr<Listener>> listeners;
};

constexpr vmci_id kSources[] = {16, 17, VMCI_HOST_CONTEXT_ID, VMCI_HYPERVISOR_CONTEXT_ID, 1,
                                VMCI_INVALID_ID};
constexpr vmci_id kResources[] = {kPacketResource, kHypervisorPacketResource, 2, 1024};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  Input in{data, size};
  while (in.size > 0) {
    // Per datagram: its source, then a packet's fields, then extra bytes.
    const uint8_t pick = in.take<uint8_t>();
    const size_t extra = in.take<uint8_t>() % 24;
    WirePacket p{};
    p.dg.dst = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, kPacketResource);
    p.dg.src = VMCI_MAKE_HANDLE(kSources[pick % 6], kResources[(pick >> 3) % 4]);
    p.version = in.take<uint8_t>();
    p.type = in.take<uint8_t>() % 16;
    p.proto = in.take<uint8_t>() % 3;
    p.src_port = 1500 + in.take<uint8_t>() % 4;
    p.dst_port = (pick & 0x80) ? 1234 : in.take<uint8_t>() % 4;
    p.u[0] = in.take<uint64_t>();
    p.u[1] = in.take<uint64_t>();
    // A shorter, longer or exact datagram; its header says its real size.
    std::vector<uint8_t> dg(sizeof p);
    std::memcpy(dg.data(), &p, sizeof p);
    if (pick & 0x40) {
      dg.resize(sizeof(vmci_datagram) + extra);
    } else {
      const auto more = in.bytes(extra);
      dg.insert(dg.end(), more.begin(), more.end());
    }
    vmci_datagram header;
    std::memcpy(&header, dg.data(), sizeof header);
    header.payload_size = dg.size() - sizeof header;
    std::memcpy(dg.data(), &header, sizeof header);
    world.vsock->receive(reinterpret_cast<const vmci_datagram*>(dg.data()));
  }
  // Children that did not finish their handshake go with the next request;
  // nothing a guest sends can grow the tables beyond the backlogs.
  check(world.vsock->connection_count() <= 3 * 2);
  return 0;
}
