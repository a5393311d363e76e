// datagram_lane_fuzzer: an owner draining datagram lanes whose memory a
// hostile guest wrote (vmci/proto/datagram_lane.h,
// vmci/proto/endpoint_datagram_lanes.h). The input is the lane's indexes,
// data and the grants the owner knows; whatever it says, the drain must
// not crash or read out of bounds, and every datagram it hands over must
// be whole, from the lane's guest and to the granted handle.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_input.h"
#include "vmci/proto/endpoint_datagram_lanes.h"
#include "vmci/proto/shared_memory.h"

namespace {

using vmci::fuzz::check;
using vmci::fuzz::Input;

using namespace vmci::proto;

constexpr vmci_id kGuest = 40;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string error;
  static std::shared_ptr<SharedMemory> memory =
      SharedMemory::anonymous(kRingChannelFileSize, &error);
  std::memset(memory->data(), 0, kRingChannelFileSize);
  auto channel = std::shared_ptr<RingChannel>(memory, reinterpret_cast<RingChannel*>(memory->data()));
  Input in{data, size};

  // Up to 4 grants: slot, generation, handle resource.
  EndpointDatagramLanes lanes;
  const uint8_t grants = in.take<uint8_t>() % 5;
  for (uint8_t i = 0; i < grants; ++i) {
    const uint32_t slot = in.take<uint16_t>() % (kRingChannelSlots + 8);
    const uint32_t generation = in.take<uint8_t>();
    const vmci_handle handle = VMCI_MAKE_HANDLE(VMCI_HOST_CONTEXT_ID, in.take<uint8_t>());
    lanes.add_grant({1, channel, slot, generation, handle, kGuest});
  }
  // The ringer's indexes, then the lane's data from its start.
  auto* control = reinterpret_cast<DatagramLaneControl*>(memory->data() + kRingChannelSize);
  control->head = in.take<uint32_t>();
  control->sent_bytes = in.take<uint32_t>();
  uint8_t* lane = memory->data() + kRingChannelSize + kDatagramLaneControlSize;
  std::memcpy(lane, in.data, in.size < kDatagramLaneDataSize ? in.size : kDatagramLaneDataSize);

  for (int round = 0; round < 4; ++round) {
    lanes.drain(
        64,
        [](std::vector<uint8_t>& dg) {
          check(dg.size() >= sizeof(vmci_datagram) && dg.size() <= VMCI_MAX_DG_SIZE);
          vmci_datagram h;
          std::memcpy(&h, dg.data(), sizeof h);
          check(sizeof h + h.payload_size == dg.size());
          check(h.src.context == kGuest);
          check(h.dst.context == VMCI_HOST_CONTEXT_ID);
        },
        [](vmci_id ringer_cid, EndpointDatagramLanes::Refusal reason, const std::string& why) {
          check(ringer_cid == kGuest);
          check(reason <= EndpointDatagramLanes::Refusal::kOtherDestination);
          check(!why.empty());
        });
    lanes.delivery_taken();  // a barrier record from the input may hold the lane until then
  }
  return 0;
}
