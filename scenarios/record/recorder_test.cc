#include "record/recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "record/trace_reader.h"
#include "vmci/vmci_defs.h"

namespace vmci::scenario {
namespace {

using nlohmann::json;

// A small session: an embedded host endpoint and guest 16, sharing pair
// (16, 1024) with 4096-byte queues. Each test adds the lines it is about.
class Session {
 public:
  Session() {
    add({{"t", 1}, {"ep", "h"}, {"pid", 1}, {"tid", 1}, {"kind", "open"}, {"role", "host"},
         {"embedded", true}, {"cid", 2}});
    add({{"t", 2}, {"ep", "g"}, {"pid", 2}, {"tid", 2}, {"kind", "open"}, {"role", "guest"},
         {"cid", 16}});
    const json pair = {{"context", 16}, {"resource", 1024}};
    call("g", 10, "qpair_alloc", 0,
         {{"produce_size", 4096}, {"consume_size", 4096}, {"peer", 2}, {"qpair", "qp1"},
          {"out", pair}});
    call("h", 11, "qpair_alloc", 0,
         {{"handle", pair}, {"produce_size", 4096}, {"consume_size", 4096}, {"peer", 16},
          {"flags", 1}, {"qpair", "qp1"}, {"out", pair}});
  }
  void add(json f) {
    TraceLine line;
    line.t = f["t"];
    line.where = "line " + std::to_string(lines.size() + 1);
    line.from_hostpeer = f.contains("hostpeer");
    line.fields = std::move(f);
    lines.push_back(std::move(line));
  }
  // A call of endpoint `ep` on its thread (tid = pid for the guest's main
  // thread; "h" calls on thread 3, its delivery thread).
  void call(const std::string& ep, uint64_t t, const char* op, int64_t result, json fields = {}) {
    if (fields.is_null()) fields = json::object();
    fields.update({{"t", t}, {"ep", ep}, {"pid", ep == "h" ? 1 : 2}, {"tid", ep == "h" ? 3 : 2},
                   {"kind", "call"}, {"op", op}, {"result", result}});
    add(fields);
  }
  // The recorded steps (repeats not unfolded), as "actor op" strings.
  std::vector<std::string> steps(Recording* out = nullptr) {
    Recording local;
    if (!out) out = &local;
    std::string error;
    EXPECT_TRUE(record_scenario(lines, {}, out, &error)) << error;
    std::vector<std::string> names;
    for (const auto& s : out->scenario["steps"]) {
      names.push_back(s.value("actor", std::string()) + " " + s["op"].get<std::string>());
    }
    return names;
  }
  std::vector<TraceLine> lines;
};

TEST(Recorder, ADequeueWaitsForTheEnqueueThatFedIt) {
  Session s;
  // The host's dequeue started first but took the guest's bytes.
  s.call("h", 20, "qpair_dequeue", 3, {{"qpair", "qp1"}, {"size", 4095}, {"data_base64", "YWJj"}});
  s.call("g", 21, "qpair_enqueue", 3, {{"qpair", "qp1"}, {"size", 3}, {"data_base64", "YWJj"}});
  Recording out;
  const auto steps = s.steps(&out);
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[2], "vm1 qpair_enqueue");
  EXPECT_EQ(steps[3], "host qpair_dequeue");
  EXPECT_EQ(out.scenario["steps"][3]["size"], 3) << "a dequeue asks for what it got";
  EXPECT_EQ(out.scenario["steps"][3]["expect_data"]["base64"], "YWJj");
}

TEST(Recorder, APollThatWouldTakeDataIsLeftOut) {
  Session s;
  s.call("g", 20, "qpair_enqueue", 3, {{"qpair", "qp1"}, {"size", 3}, {"data_base64", "YWJj"}});
  // Recorded as finding nothing, but merged after the enqueue.
  s.call("h", 21, "qpair_dequeue", VMCI_ERROR_QUEUEPAIR_NODATA,
         {{"qpair", "qp1"}, {"size", 4095}, {"data_base64", ""}});
  s.call("h", 22, "qpair_dequeue", 3, {{"qpair", "qp1"}, {"size", 4095}, {"data_base64", "YWJj"}});
  Recording out;
  const auto steps = s.steps(&out);
  EXPECT_EQ(steps.size(), 4u);
  EXPECT_EQ(out.dropped_polls, 1u);
}

TEST(Recorder, APollOnAnEmptyQueueIsKeptWithItsStatus) {
  Session s;
  s.call("h", 20, "qpair_dequeue", VMCI_ERROR_QUEUEPAIR_NODATA,
         {{"qpair", "qp1"}, {"size", 4095}, {"data_base64", ""}});
  Recording out;
  ASSERT_EQ(s.steps(&out).size(), 3u);
  EXPECT_EQ(out.scenario["steps"][2]["expect"], "VMCI_ERROR_QUEUEPAIR_NODATA");
}

TEST(Recorder, CoalescedRingsExpectOneCallback) {
  Session s;
  const json bell = {{"context", 2}, {"resource", 77}};
  s.call("h", 12, "doorbell_create", 0, {{"handle", bell}, {"out", bell}});
  s.call("g", 20, "doorbell_notify", 0, {{"handle", bell}});
  s.call("g", 21, "doorbell_notify", 0, {{"handle", bell}});
  // Two callbacks in the recording; replayed, the rings may coalesce.
  for (uint64_t t : {22, 23}) {
    s.add({{"t", t}, {"ep", "h"}, {"pid", 1}, {"tid", 3}, {"kind", "callback"}, {"op", "doorbell"},
           {"handle", bell}});
  }
  const auto steps = s.steps();
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "host expect_doorbell"), 1);
}

TEST(Recorder, AHostCallThatSawItsPeerComesBeforeThePeersDetach) {
  Session s;
  s.call("g", 30, "qpair_detach", 0, {{"qpair", "qp1"}});
  // Started after the detach did, but saw the guest still there.
  s.call("h", 31, "qpair_produce_free_space", 4095, {{"qpair", "qp1"}});
  const auto steps = s.steps();
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[2], "host qpair_produce_free_space");
  EXPECT_EQ(steps[3], "vm1 qpair_detach");
}

TEST(Recorder, AConnectionThatHostpeerSawGoIsAKill) {
  Session s;
  s.add({{"t", 2}, {"hostpeer", 9}, {"kind", "admit"}, {"peer", 5}, {"role", "guest"},
         {"pid", 2}, {"cid", 16}, {"status", 0}});
  s.add({{"t", 40}, {"hostpeer", 9}, {"kind", "remove"}, {"peer", 5}, {"cid", 16}});
  const auto steps = s.steps();
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[2], "vm1 kill");
}

TEST(Recorder, AHostsDetachThatHeardItsPeerLeaveComesAfterThePeersEnd) {
  Session s;
  s.call("h", 12, "event_subscribe", 0, {{"event", "QP_PEER_DETACH"}, {"subscription", 1}});
  s.add({{"t", 2}, {"hostpeer", 9}, {"kind", "admit"}, {"peer", 5}, {"role", "guest"},
         {"pid", 2}, {"cid", 16}, {"status", 0}});
  // The host's detach started before hostpeer saw the guest go, yet the host
  // heard the guest leave the pair: the guest went first.
  s.call("h", 30, "qpair_detach", 0, {{"qpair", "qp1"}});
  s.add({{"t", 40}, {"hostpeer", 9}, {"kind", "remove"}, {"peer", 5}, {"cid", 16}});
  s.add({{"t", 45}, {"ep", "h"}, {"pid", 1}, {"tid", 1}, {"kind", "callback"}, {"op", "event"},
         {"event", "QP_PEER_DETACH"}, {"subscription", 1},
         {"data", {{"handle", {{"context", 16}, {"resource", 1024}}}, {"peer_id", 16}}}});
  const auto steps = s.steps();
  ASSERT_EQ(steps.size(), 6u);
  EXPECT_EQ(steps[3], "vm1 kill");
  EXPECT_EQ(steps[4], "host expect_event");
  EXPECT_EQ(steps[5], "host qpair_detach");
}

TEST(Recorder, HandlesBecomeVariablesAndGuestsKeepTheirIds) {
  Session s;
  s.call("g", 20, "qpair_detach", 0, {{"qpair", "qp1"}});
  Recording out;
  s.steps(&out);
  const auto& steps = out.scenario["steps"];
  EXPECT_EQ(steps[0]["as"], "$qp1");
  EXPECT_EQ(steps[1]["handle"], "$qp1.handle");
  EXPECT_EQ(steps[1]["peer"], "vm1");
  EXPECT_EQ(out.scenario["actors"][1]["context_id"], 16);
}

TEST(Recorder, AnOversizedDatagramThatWasNotReadReplaysAsZerosOfItsSize) {
  Session s;
  s.call("g", 20, "datagram_send", VMCI_ERROR_INVALID_ARGS,
         {{"src", {{"context", 16}, {"resource", 1}}}, {"dst", {{"context", 2}, {"resource", 9}}},
          {"payload_size", 70000}});
  Recording out;
  s.steps(&out);
  EXPECT_EQ(out.scenario["steps"][2]["payload"], json({{"zeros", 70000}}));
  EXPECT_EQ(out.scenario["steps"][2]["expect"], "VMCI_ERROR_INVALID_ARGS");
}

TEST(Recorder, AnEndpointWithoutItsOpenLineIsAnError) {
  Session s;
  s.add({{"t", 5}, {"ep", "x"}, {"pid", 3}, {"tid", 3}, {"kind", "call"}, {"op", "get_context_id"},
         {"result", 17}});
  Recording out;
  std::string error;
  EXPECT_FALSE(record_scenario(s.lines, {}, &out, &error));
  EXPECT_NE(error.find("no \"open\" line"), std::string::npos) << error;
}

TEST(Recorder, AFieldOfTheWrongTypeIsAnErrorNotACrash) {
  Session s;
  s.call("g", 20, "qpair_enqueue", 3, {{"qpair", 7}});
  Recording out;
  std::string error;
  EXPECT_FALSE(record_scenario(s.lines, {}, &out, &error));
  EXPECT_NE(error.find("wrong type"), std::string::npos) << error;
}

// Traces written before the base64 keys carried bytes in hex as "data" and
// "payload": they are still read, as base64.
TEST(TraceReader, OldHexTracesAreReadAsBase64) {
  char path[] = "/tmp/vmci-trace-reader-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  {
    std::ofstream out(path);
    out << R"({"t":1,"ep":"g","kind":"call","op":"qpair_enqueue","qpair":"qp1","data":"616263","result":3})"
        << "\n"
        << R"({"t":2,"ep":"g","kind":"callback","op":"datagram","payload":"00ff"})"
        << "\n"
        << R"({"t":3,"ep":"g","kind":"callback","op":"event","data":{"context_id":16}})"
        << "\n"
        << R"({"t":4,"ep":"g","kind":"call","op":"datagram_send","payload_base64":"qwE=","result":26})"
        << "\n";
  }
  std::vector<TraceLine> lines;
  std::string error;
  ASSERT_TRUE(read_traces({path}, &lines, &error)) << error;
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].fields["data_base64"], "YWJj");
  EXPECT_FALSE(lines[0].fields.contains("data"));
  EXPECT_EQ(lines[1].fields["payload_base64"], "AP8=");
  EXPECT_EQ(lines[2].fields["data"]["context_id"], 16);  // an event's data is no bytes
  EXPECT_EQ(lines[3].fields["payload_base64"], "qwE=");

  std::ofstream(path) << R"({"t":1,"ep":"g","kind":"callback","op":"datagram","payload":"0g"})"
                      << "\n";
  lines.clear();
  EXPECT_FALSE(read_traces({path}, &lines, &error));
  EXPECT_NE(error.find(":1: "), std::string::npos) << error;
  ::unlink(path);
}

}  // namespace
}  // namespace vmci::scenario
