// frame_fuzzer: the control channel's decoders (vmci/proto/frame.h and the
// hypercall parsers) over arbitrary bytes, as a peer or hostpeer reads
// them: a stream of frames, each header checked before its body is looked
// at, then every decoder that could see that body. None may crash, read
// out of bounds, or accept what breaks its rules.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fuzz_input.h"
#include "vmci/proto/datagram.h"
#include "vmci/proto/doorbell_hypercalls.h"
#include "vmci/proto/frame.h"
#include "vmci/proto/queue_pair_hypercalls.h"

namespace {

using vmci::fuzz::check;

using namespace vmci::proto;

// A datagram body: what hostpeer's core and a peer's reader do with it.
void decode_datagram(std::span<const uint8_t> dg) {
  if (check_datagram(dg) != VMCI_SUCCESS) {
    if (is_qp_alloc_hypercall(dg)) {  // may exceed a datagram (spec §11 item 33)
      QpAllocFields fields;
      parse_qp_alloc_message(dg, &fields);
    }
    return;
  }
  const vmci_datagram h = header_of(dg);
  check(dg.size() == sizeof h + h.payload_size);
  if (is_event_datagram(h)) check_event_datagram(dg);
  QpAllocFields fields;
  if (parse_qp_alloc_message(dg, &fields) == VMCI_SUCCESS) {
    check(dg.size() >= sizeof h);
  }
  vmci_handle handle;
  parse_qp_detach_message(dg, &handle);
  uint64_t index;
  parse_doorbell_link_message(dg, &handle, &index);
  parse_doorbell_message(dg, &handle);
  const uint32_t implemented[] = {0, 1, 2, 10, 11};
  answer_resources_query(dg, implemented);
}

void decode_body_of(FrameType type, std::span<const uint8_t> body) {
  switch (type) {
    case FrameType::kDatagram:
    case FrameType::kDeliver:
      decode_datagram(body);
      break;
    case FrameType::kWelcome:
      decode_body<WelcomeBody>(body);
      decode_trailer(body, sizeof(WelcomeBody));
      break;
    case FrameType::kGoodbye:
      decode_body<GoodbyeBody>(body);
      decode_trailer(body, sizeof(GoodbyeBody));
      break;
    case FrameType::kRingGrant:
      decode_body<RingGrantBody>(body);
      break;
    case FrameType::kResult:
      decode_body<ResultBody>(body);
      break;
    case FrameType::kGuestMemory: {
      GuestMemoryBody fixed;
      std::vector<GuestMemoryRegion> regions;
      std::string error;
      if (!decode_guest_memory(body, &fixed, &regions, &error)) check(!error.empty());
      break;
    }
    case FrameType::kQueuePairMemory: {
      QueuePairMemoryBody fixed;
      std::vector<QueuePairExtent> extents;
      std::string error;
      if (!decode_queue_pair_memory(body, &fixed, &extents, &error)) check(!error.empty());
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte says who reads: hostpeer (from a peer) or a peer.
  const Direction direction = data[0] & 1 ? Direction::kToPeer : Direction::kToHostpeer;
  std::span<const uint8_t> stream(data + 1, size - 1);
  while (stream.size() >= sizeof(FrameHeader)) {
    FrameHeader header;
    std::memcpy(&header, stream.data(), sizeof header);
    stream = stream.subspan(sizeof header);
    const FrameCheck checked = check_frame_header(header, direction);
    if (!checked.ok) {
      check(!checked.error.empty());
      return 0;  // the reader closes the connection here
    }
    // hostpeer's queue-pair-memory frames, to peers only, may be larger.
    check(header.body_size <= kMaxFrameBody ||
          (direction == Direction::kToPeer &&
           header.type == static_cast<uint16_t>(FrameType::kQueuePairMemory)));
    if (header.body_size > stream.size()) return 0;  // the rest never came
    decode_body_of(static_cast<FrameType>(header.type), stream.first(header.body_size));
    stream = stream.subspan(header.body_size);
  }
  return 0;
}
