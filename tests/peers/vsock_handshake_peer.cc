// vmci-vsock-handshake-peer: a guest that plays vSockets' client handshake
// by hand, packet by packet, and stops at a given step to be killed there:
//
//   vmci-vsock-handshake-peer SOCKET PORT STEP
//     0  connected, its control handle made, nothing sent
//     1  REQUEST2 sent
//     2  NEGOTIATE2 received and the queue pair made, not offered yet
//     3  OFFER sent (the server attaches and the connection is established)
//     4  ATTACH received, one byte written and WROTE sent
// It prints "at STEP" once there (or "error WHY") and waits for stdin to
// close or a signal.
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>

#include "vmci/guest/driver.h"
#include "vmci/vsock/packet.h"

namespace {

using namespace vmci;
using namespace vmci::vsock;

struct Received {
  std::mutex mutex;
  std::condition_variable arrived;
  bool have = false;
  Packet packet;
};

int fail(const std::string& why) {
  std::printf("error %s\n", why.c_str());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return fail("usage: vmci-vsock-handshake-peer SOCKET PORT STEP");
  const uint32_t port = static_cast<uint32_t>(std::stoul(argv[2]));
  const int step = std::stoi(argv[3]);
  int status = 0;
  std::string error;
  auto driver = guest::Driver::connect({.socket_path = argv[1], .role = proto::Role::kGuest},
                                       &status, &error);
  if (!driver) return fail(error);
  Received received;
  vmci_handle control;
  if (driver->datagram_create_handle(
          kPacketResource, VMCI_FLAG_ANYCID_DG_HND, 0,
          [&](vmci_datagram* dg) {
            std::string why;
            Packet p;
            const auto* bytes = reinterpret_cast<const uint8_t*>(dg);
            if (decode({bytes, VMCI_DG_SIZE(dg)}, &p, &why) == Decoded::kPacket) {
              std::lock_guard lock(received.mutex);
              received.packet = p;
              received.have = true;
              received.arrived.notify_all();
            }
            return 0;
          },
          &control) < VMCI_SUCCESS) {
    return fail("no control handle");
  }
  constexpr uint32_t kLocalPort = 40000;
  auto send = [&](PacketType type, uint64_t u = 0, uint16_t proto = 0) {
    const auto bytes = encode(type, VMCI_HOST_CONTEXT_ID, kLocalPort, port, u, proto);
    return driver->datagram_send(reinterpret_cast<const vmci_datagram*>(bytes.data()));
  };
  auto next = [&](PacketType type) {
    std::unique_lock lock(received.mutex);
    const bool got = received.arrived.wait_for(lock, std::chrono::seconds(5), [&] {
      return received.have;
    });
    received.have = false;
    return got && received.packet.type == type;
  };
  std::unique_ptr<QueuePair> qp;
  vmci_handle handle = VMCI_INVALID_HANDLE;
  for (int at = 1; at <= step; ++at) {
    switch (at) {
      case 1:
        if (send(PacketType::kRequest2, 65536, kProtoQueueState) < 0) return fail("REQUEST2");
        break;
      case 2:
        if (!next(PacketType::kNegotiate2)) return fail("no NEGOTIATE2");
        if (driver->qpair_alloc(&qp, &handle, 65536, 65536, VMCI_HOST_CONTEXT_ID, 0, 0) < 0) {
          return fail("qpair_alloc");
        }
        break;
      case 3:
        if (send(PacketType::kOffer, handle_word(handle)) < 0) return fail("OFFER");
        break;
      case 4:
        if (!next(PacketType::kAttach)) return fail("no ATTACH");
        if (qp->enqueue("!", 1) != 1 || send(PacketType::kWrote) < 0) return fail("write");
        break;
    }
  }
  std::printf("at %d\n", step);
  std::fflush(stdout);
  std::string line;
  std::getline(std::cin, line);  // until killed, or stdin closes
  return 0;
}
