#include "vmci/proto/datagram_lane.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace vmci::proto {
namespace {

DatagramLaneControl* control_of(RingChannel* channel) {
  return reinterpret_cast<DatagramLaneControl*>(reinterpret_cast<uint8_t*>(channel) +
                                                kRingChannelSize);
}

uint8_t* data_of(RingChannel* channel) {
  return reinterpret_cast<uint8_t*>(channel) + kRingChannelSize + kDatagramLaneControlSize;
}

uint64_t load(uint64_t& word) {
  return std::atomic_ref<uint64_t>(word).load(std::memory_order_acquire);
}

void store(uint64_t& word, uint64_t value) {
  std::atomic_ref<uint64_t>(word).store(value, std::memory_order_release);
}

// Copies `n` bytes at ring offset `at` (mod the data size) in or out.
void copy_in(uint8_t* data, uint64_t at, const void* from, uint64_t n) {
  if (n == 0) return;  // `from` may be null (an empty payload)
  const uint64_t start = at % kDatagramLaneDataSize;
  const uint64_t first = std::min(n, kDatagramLaneDataSize - start);
  std::memcpy(data + start, from, first);
  std::memcpy(data, static_cast<const uint8_t*>(from) + first, n - first);
}

void copy_out(const uint8_t* data, uint64_t at, void* to, uint64_t n) {
  if (n == 0) return;
  const uint64_t start = at % kDatagramLaneDataSize;
  const uint64_t first = std::min(n, kDatagramLaneDataSize - start);
  std::memcpy(to, data + start, first);
  std::memcpy(static_cast<uint8_t*>(to) + first, data, n - first);
}

}  // namespace

LaneSend LaneWriter::send(uint32_t slot, uint32_t generation, const vmci_datagram& header,
                          std::span<const uint8_t> payload, uint64_t lane_cap) {
  if (!slot_granted(channel_, slot, generation)) return LaneSend::kRefused;
  const uint64_t size = sizeof header + payload.size();
  const uint64_t record = lane_record_size(size);
  DatagramLaneControl* control = control_of(channel_);
  // The owner's indexes, checked against ours: an owner that wrote nonsense
  // makes the lane look full, never overrun.
  const uint64_t tail = load(control->tail);
  const uint64_t taken = load(control->taken_bytes);
  if (tail > head_ || taken > sent_) return LaneSend::kFull;
  if (sent_ - taken + size >= lane_cap) return LaneSend::kFull;
  const uint64_t deliveries = load(channel_->owner_deliveries);
  const uint64_t barrier = deliveries != barrier_ ? kLaneBarrierRecordSize : 0;
  if (head_ - tail + barrier + record > kDatagramLaneDataSize) return LaneSend::kFull;

  uint8_t* data = data_of(channel_);
  if (barrier != 0) {
    const uint32_t barrier_tag[2] = {kLaneBarrierSlot, 0};
    copy_in(data, head_, barrier_tag, sizeof barrier_tag);
    copy_in(data, head_ + sizeof barrier_tag, &deliveries, sizeof deliveries);
    head_ += kLaneBarrierRecordSize;
    barrier_ = deliveries;
  }
  const uint32_t tag[2] = {slot, generation};
  copy_in(data, head_, tag, sizeof tag);
  copy_in(data, head_ + sizeof tag, &header, sizeof header);
  copy_in(data, head_ + sizeof tag + sizeof header, payload.data(), payload.size());
  head_ += record;
  sent_ += size;
  store(control->sent_bytes, sent_);
  store(control->head, head_);
  return signal(&channel_->wake) ? LaneSend::kSentWakeNeeded : LaneSend::kSent;
}

void LaneReader::seal() {
  sealed_head_ = head();
  sealed_ = true;
}

void LaneReader::take_barrier() {
  tail_ += kLaneBarrierRecordSize;
  store(control_of(channel_)->tail, tail_);
}

uint64_t LaneReader::head() const {
  return sealed_ ? sealed_head_ : load(control_of(channel_)->head);
}

LanePeek LaneReader::peek(LaneRecord* record, uint64_t* barrier, std::string* why) {
  const uint64_t head = this->head();
  if (head == tail_) return LanePeek::kEmpty;
  const uint64_t available = head - tail_;
  if (head < tail_ || available > kDatagramLaneDataSize) {
    *why = "the lane's head " + std::to_string(head) + " is not within the data after its tail " +
           std::to_string(tail_);
    return LanePeek::kCorrupt;
  }
  const uint8_t* data = data_of(channel_);
  uint32_t tag[2];
  vmci_datagram header;
  if (available < sizeof tag) {
    *why = "a record of " + std::to_string(available) + " bytes is shorter than its header";
    return LanePeek::kCorrupt;
  }
  copy_out(data, tail_, tag, sizeof tag);
  if (tag[0] == kLaneBarrierSlot) {
    if (available < kLaneBarrierRecordSize) {
      *why = "a barrier record of " + std::to_string(available) + " bytes is cut short";
      return LanePeek::kCorrupt;
    }
    copy_out(data, tail_ + sizeof tag, barrier, sizeof *barrier);
    return LanePeek::kBarrier;
  }
  if (available < sizeof tag + sizeof header) {
    *why = "a record of " + std::to_string(available) + " bytes is shorter than its header";
    return LanePeek::kCorrupt;
  }
  copy_out(data, tail_ + sizeof tag, &header, sizeof header);
  // payload_size first: a huge one would wrap the sum around to a small size.
  if (header.payload_size > VMCI_MAX_DG_SIZE - sizeof header) {
    *why = "a record's datagram claims a payload of " + std::to_string(header.payload_size) +
           " bytes (at most " + std::to_string(VMCI_MAX_DG_SIZE - sizeof header) + ")";
    return LanePeek::kCorrupt;
  }
  const uint64_t size = sizeof header + header.payload_size;
  if (lane_record_size(size) > available) {
    *why = "a record's datagram of " + std::to_string(size) + " bytes does not fit (" +
           std::to_string(available) + " bytes written, at most " +
           std::to_string(VMCI_MAX_DG_SIZE) + ")";
    return LanePeek::kCorrupt;
  }
  *record = LaneRecord{tag[0], tag[1], size};
  return LanePeek::kRecord;
}

bool LaneReader::take(const LaneRecord& record, std::vector<uint8_t>* datagram) {
  bool intact = true;
  if (datagram != nullptr) {
    datagram->resize(record.size);
    copy_out(data_of(channel_), tail_ + 8, datagram->data(), record.size);
    vmci_datagram header;
    std::memcpy(&header, datagram->data(), sizeof header);
    intact = sizeof header + header.payload_size == record.size;
    if (!intact) datagram->clear();
  }
  tail_ += lane_record_size(record.size);
  taken_ += record.size;
  DatagramLaneControl* control = control_of(channel_);
  store(control->taken_bytes, taken_);
  store(control->tail, tail_);
  return intact;
}

}  // namespace vmci::proto
