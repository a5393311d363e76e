// TracedEndpoint over a stand-in endpoint: what each line says, and that
// tracing reads no more of the caller's memory than the endpoint does.
#include "vmci/trace/traced_endpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "vmci/trace/trace_file.h"

namespace vmci::trace {
namespace {

using nlohmann::json;

// Answers as an endpoint would, and keeps the callbacks it was given.
class StandIn final : public Endpoint {
 public:
  vmci_id get_context_id() override { return 16; }
  int datagram_create_handle(vmci_id, uint32_t, uint32_t, DatagramCallback cb,
                             vmci_handle* out) override {
    datagram_callback = std::move(cb);
    *out = VMCI_MAKE_HANDLE(16, 1025);
    return VMCI_SUCCESS;
  }
  int datagram_destroy_handle(vmci_handle) override { return VMCI_SUCCESS; }
  int datagram_send(const vmci_datagram* dg) override {
    return VMCI_DG_SIZE(dg) > VMCI_MAX_DG_SIZE ? VMCI_ERROR_INVALID_ARGS
                                               : static_cast<int>(VMCI_DG_SIZE(dg));
  }
  int event_subscribe(uint32_t, EventCallback, vmci_id* sub) override {
    *sub = 1;
    return VMCI_SUCCESS;
  }
  int event_unsubscribe(vmci_id) override { return VMCI_SUCCESS; }
  int qpair_alloc(std::unique_ptr<QueuePair>*, vmci_handle*, uint64_t, uint64_t, vmci_id, uint32_t,
                  uint32_t) override {
    return VMCI_ERROR_NO_RESOURCES;
  }
  int qpair_detach(std::unique_ptr<QueuePair>*) override { return VMCI_ERROR_INVALID_ARGS; }
  int doorbell_create(vmci_handle* h, uint32_t, uint32_t, DoorbellCallback cb) override {
    doorbell_callback = std::move(cb);
    *h = VMCI_MAKE_HANDLE(16, 1024);
    return VMCI_SUCCESS;
  }
  int doorbell_destroy(vmci_handle) override { return VMCI_SUCCESS; }
  int doorbell_notify(vmci_handle, uint32_t) override { return VMCI_SUCCESS; }
  void hold_callbacks() override {}
  void release_callbacks() override {}
  bool connected() const override { return true; }

  DatagramCallback datagram_callback;
  DoorbellCallback doorbell_callback;
};

class TracedEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vmci-trace-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/trace.jsonl";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  std::vector<json> lines() const {
    std::vector<json> out;
    std::ifstream in(path_);
    for (std::string text; std::getline(in, text);) out.push_back(json::parse(text));
    return out;
  }
  std::shared_ptr<TraceFile> open() {
    std::string error;
    std::shared_ptr<TraceFile> file = TraceFile::open(path_, &error);
    EXPECT_TRUE(file) << error;
    return file;
  }
  std::string dir_, path_;
};

TEST_F(TracedEndpointTest, EachCallAndCallbackIsALineWithItsResult) {
  StandIn inner;
  {
    TracedEndpoint traced(inner, open(), {proto::Role::kGuest, false, 16, 77, 0});
    vmci_handle h;
    ASSERT_EQ(traced.datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                            &h),
              VMCI_SUCCESS);
    vmci_handle bell = VMCI_INVALID_HANDLE;
    ASSERT_EQ(traced.doorbell_create(&bell, 0, 0, [] {}), VMCI_SUCCESS);
    inner.doorbell_callback();
    std::vector<uint8_t> dg(sizeof(vmci_datagram) + 2);
    auto* header = reinterpret_cast<vmci_datagram*>(dg.data());
    header->dst = VMCI_MAKE_HANDLE(2, 4242);
    header->src = h;
    header->payload_size = 2;
    dg[sizeof(vmci_datagram)] = 0xab;
    dg[sizeof(vmci_datagram) + 1] = 0x01;
    inner.datagram_callback(header);
    std::unique_ptr<QueuePair> qp;
    vmci_handle qh = VMCI_INVALID_HANDLE;
    EXPECT_EQ(traced.qpair_alloc(&qp, &qh, 4096, 4096, 2, 0, 0), VMCI_ERROR_NO_RESOURCES);
  }
  const auto l = lines();
  ASSERT_EQ(l.size(), 7u);
  EXPECT_EQ(l[0]["kind"], "open");
  EXPECT_EQ(l[0]["requested_cid"], 77);
  EXPECT_EQ(l[1]["op"], "datagram_create_handle");
  EXPECT_EQ(l[1]["out"]["resource"], 1025);
  EXPECT_EQ(l[2]["op"], "doorbell_create");
  EXPECT_EQ(l[3]["kind"], "callback");
  EXPECT_EQ(l[3]["handle"]["resource"], 1024) << "a doorbell callback names its doorbell";
  EXPECT_EQ(l[4]["op"], "datagram");
  EXPECT_EQ(l[4]["payload_base64"], "qwE=");
  EXPECT_EQ(l[5]["op"], "qpair_alloc");
  EXPECT_EQ(l[5]["result"], VMCI_ERROR_NO_RESOURCES);
  EXPECT_FALSE(l[5].contains("qpair")) << "a failed alloc made no pair";
  EXPECT_EQ(l[6]["kind"], "close");
  EXPECT_EQ(l[6]["how"], "disconnect");
  for (const auto& line : l) {
    EXPECT_EQ(line["ep"], l[0]["ep"]);
    EXPECT_GE(line["t"].get<uint64_t>(), l[0]["t"].get<uint64_t>());
  }
}

TEST_F(TracedEndpointTest, AnOversizedDatagramIsTracedByItsSizeNotRead) {
  StandIn inner;
  {
    TracedEndpoint traced(inner, open(), {proto::Role::kGuest, false, 16});
    // The header says 70000 bytes follow; none do (AddressSanitizer would
    // see a read past the header).
    auto header = std::make_unique<vmci_datagram>();
    header->dst = VMCI_MAKE_HANDLE(2, 1);
    header->src = VMCI_MAKE_HANDLE(16, 1);
    header->payload_size = 70000;
    EXPECT_EQ(traced.datagram_send(header.get()), VMCI_ERROR_INVALID_ARGS);
    traced.closed("kill");
  }
  const auto l = lines();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_FALSE(l[1].contains("payload_base64"));
  EXPECT_EQ(l[1]["payload_size"], 70000);
  EXPECT_EQ(l[2]["how"], "kill") << "closed() is said once";
}

// RFC 4648's test vectors, and the last two characters of the alphabet.
TEST(TraceFile, Base64AsRfc4648) {
  auto b64 = [](std::string_view text) {
    return to_base64({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
  const std::vector<uint8_t> high = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(to_base64(high), "+/+/");
}

}  // namespace
}  // namespace vmci::trace
