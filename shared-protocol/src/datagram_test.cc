#include "vmci/proto/datagram.h"

#include <gtest/gtest.h>

namespace vmci::proto {
namespace {

const vmci_handle kDst = VMCI_MAKE_HANDLE(2, 4242);
const vmci_handle kSrc = VMCI_MAKE_HANDLE(16, 1024);

TEST(Datagram, MakeLaysOutHeaderThenPayload) {
  const uint8_t payload[] = {1, 2, 3};
  const Bytes dg = make_datagram(kDst, kSrc, payload);
  ASSERT_EQ(dg.size(), 27u);
  const vmci_datagram h = header_of(dg);
  EXPECT_EQ(h.dst.context, 2u);
  EXPECT_EQ(h.dst.resource, 4242u);
  EXPECT_EQ(h.src.context, 16u);
  EXPECT_EQ(h.payload_size, 3u);
  EXPECT_EQ(dg[24], 1);
  EXPECT_EQ(dg[26], 3);
  EXPECT_EQ(check_datagram(dg), VMCI_SUCCESS);
}

TEST(Datagram, Item20_LargestRoutableDatagramIsAccepted) {
  const Bytes dg = make_datagram(kDst, kSrc, Bytes(kMaxDatagramPayload));
  EXPECT_EQ(dg.size(), 69632u);
  EXPECT_EQ(check_datagram(dg), VMCI_SUCCESS);
}

TEST(Datagram, Item20_OneByteOverTheLimitIsInvalidArgs) {
  const Bytes dg = make_datagram(kDst, kSrc, Bytes(kMaxDatagramPayload + 1));
  EXPECT_EQ(check_datagram(dg), VMCI_ERROR_INVALID_ARGS);
}

TEST(Datagram, TruncatedOrPaddedIsInvalidArgs) {
  Bytes dg = make_datagram(kDst, kSrc, Bytes(10));
  EXPECT_EQ(check_datagram(std::span(dg).first(23)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(check_datagram(std::span(dg).first(33)), VMCI_ERROR_INVALID_ARGS);
  dg.push_back(0);
  EXPECT_EQ(check_datagram(dg), VMCI_ERROR_INVALID_ARGS);
}

TEST(Datagram, HugePayloadSizeFieldIsInvalidArgs) {
  Bytes dg = make_datagram(kDst, kSrc, {});
  vmci_datagram h = header_of(dg);
  h.payload_size = ~0ull;
  std::memcpy(dg.data(), &h, sizeof h);
  EXPECT_EQ(check_datagram(dg), VMCI_ERROR_INVALID_ARGS);
}

TEST(EventDatagram, ContextEventLayout) {
  const Bytes dg = make_context_event(2, VMCI_EVENT_CTX_REMOVED, 77);
  ASSERT_EQ(dg.size(), sizeof(vmci_event_context));
  vmci_event_context ev;
  std::memcpy(&ev, dg.data(), sizeof ev);
  EXPECT_EQ(ev.msg.hdr.dst.context, 2u);
  EXPECT_EQ(ev.msg.hdr.dst.resource, unsigned{VMCI_EVENT_HANDLER});
  EXPECT_EQ(ev.msg.hdr.src.context, unsigned{VMCI_HYPERVISOR_CONTEXT_ID});
  EXPECT_EQ(ev.msg.hdr.payload_size, 16u);
  EXPECT_EQ(ev.msg.event_data.event, VMCI_EVENT_CTX_REMOVED);
  EXPECT_EQ(ev.payload.context_id, 77u);
  EXPECT_TRUE(is_event_datagram(ev.msg.hdr));
  EXPECT_EQ(check_event_datagram(dg), VMCI_SUCCESS);
}

TEST(EventDatagram, QueuePairEventLayout) {
  const Bytes dg =
      make_queue_pair_event(16, VMCI_EVENT_QP_PEER_DETACH, VMCI_MAKE_HANDLE(16, 1025), 2);
  ASSERT_EQ(dg.size(), sizeof(vmci_event_qp));
  vmci_event_qp ev;
  std::memcpy(&ev, dg.data(), sizeof ev);
  EXPECT_EQ(ev.msg.hdr.payload_size, 24u);
  EXPECT_EQ(ev.payload.handle.resource, 1025u);
  EXPECT_EQ(ev.payload.peer_id, 2u);
}

Bytes event_with_payload_size(uint32_t event, size_t payload_size) {
  Bytes payload(payload_size);
  if (payload_size > 0) std::memcpy(payload.data(), &event, std::min(payload_size, sizeof event));
  return make_datagram(VMCI_MAKE_HANDLE(16, VMCI_EVENT_HANDLER), VMCI_MAKE_HANDLE(0, 0), payload);
}

TEST(EventDatagram, Item24_PayloadUnder4OrOver24IsInvalidArgs) {
  EXPECT_EQ(check_event_datagram(event_with_payload_size(1, 3)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(check_event_datagram(event_with_payload_size(1, 0)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(check_event_datagram(event_with_payload_size(1, 25)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(check_event_datagram(event_with_payload_size(1, 4)), VMCI_SUCCESS);
  EXPECT_EQ(check_event_datagram(event_with_payload_size(1, 24)), VMCI_SUCCESS);
}

TEST(EventDatagram, Item24_UnsubscribableOrUnknownTypeIsEventUnknown) {
  for (uint32_t event : {5u, 6u, 7u, 8u, 9u, 100u}) {
    SCOPED_TRACE(event);
    EXPECT_EQ(check_event_datagram(event_with_payload_size(event, 16)), VMCI_ERROR_EVENT_UNKNOWN);
  }
  for (uint32_t event : {0u, 1u, 2u, 3u, 4u}) {
    EXPECT_EQ(check_event_datagram(event_with_payload_size(event, 16)), VMCI_SUCCESS);
  }
}

Bytes resources_query(std::vector<uint32_t> rids) {
  Bytes payload(8 + 4 * rids.size());
  const uint32_t count = static_cast<uint32_t>(rids.size());
  std::memcpy(payload.data(), &count, 4);
  if (!rids.empty()) std::memcpy(payload.data() + 8, rids.data(), 4 * rids.size());
  return make_datagram(VMCI_MAKE_HANDLE(0, VMCI_RESOURCES_QUERY), VMCI_ANON_SRC_HANDLE, payload);
}

TEST(ResourcesQuery, Item31_GetContextIdAloneAnswersOne) {
  const uint32_t implemented[] = {VMCI_RESOURCES_QUERY, VMCI_GET_CONTEXT_ID};
  EXPECT_EQ(answer_resources_query(resources_query({VMCI_GET_CONTEXT_ID}), implemented), 1);
}

TEST(ResourcesQuery, Item31_AnswerIsABitMaskByPosition) {
  const uint32_t implemented[] = {VMCI_RESOURCES_QUERY, VMCI_GET_CONTEXT_ID};
  EXPECT_EQ(answer_resources_query(resources_query({VMCI_DOORBELL_LINK, VMCI_GET_CONTEXT_ID, 99,
                                                    VMCI_RESOURCES_QUERY}),
                                   implemented),
            0b1010);
  EXPECT_EQ(answer_resources_query(resources_query({}), implemented), 0);
}

TEST(ResourcesQuery, MalformedIsInvalidArgs) {
  const uint32_t implemented[] = {VMCI_GET_CONTEXT_ID};
  Bytes q = resources_query({1, 1});
  uint32_t lie = 3;  // claims three ids, carries two
  std::memcpy(q.data() + 24, &lie, 4);
  EXPECT_EQ(answer_resources_query(q, implemented), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(answer_resources_query(resources_query(std::vector<uint32_t>(32, 1)), implemented),
            VMCI_ERROR_INVALID_ARGS);
  const Bytes bare = make_datagram(VMCI_MAKE_HANDLE(0, 0), VMCI_ANON_SRC_HANDLE, {});
  EXPECT_EQ(answer_resources_query(bare, implemented), VMCI_ERROR_INVALID_ARGS);
}

}  // namespace
}  // namespace vmci::proto
