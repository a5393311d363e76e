#include "loader.h"

#include <gtest/gtest.h>

namespace vmci::scenario {
namespace {

const char* kGood = R"({
  "format": 1, "scenario": "good", "x-anything": {"ignored": true},
  "hostpeer": {"limits": {"max_pending_datagram_bytes": "64KiB"}},
  "actors": [{"name": "host", "role": "host"},
             {"name": "vm1", "role": "guest", "context_id": 77, "priv_flags": ["RESTRICTED"]}],
  "steps": [
    {"op": "datagram_create_handle", "actor": "host", "resource": 4242, "as": "$h"},
    {"op": "datagram_create_handle", "actor": "vm1", "resource": "any", "flags": ["DELAYED_CB"], "as": "$v"},
    {"op": "datagram_send", "actor": "vm1", "src": "$v", "dst": {"context": "host", "resource": 4242},
     "payload": {"pattern": {"seed": 7, "length": "1KiB"}}, "expect": {"min": 0, "max": 2000}},
    {"op": "expect_datagram", "actor": "host", "handle": "$h", "timeout_ms": 500},
    {"op": "repeat", "count": 3, "steps": [{"op": "sleep", "ms": 1}]},
    {"op": "parallel", "branches": [[{"op": "get_context_id", "actor": "vm1"}], []]},
    {"op": "qpair_alloc", "actor": "vm1", "produce_size": "4KiB", "consume_size": 4096,
     "peer": "host", "flags": ["ATTACH_ONLY"], "expect": "VMCI_ERROR_NOT_FOUND"}
  ]
})";

TEST(Loader, AValidFileLoads) {
  LoadError error;
  auto s = parse_scenario("good.json", kGood, &error);
  ASSERT_TRUE(s.has_value()) << error.describe();
  EXPECT_EQ(s->name, "good");
  EXPECT_EQ(s->limits.at("max_pending_datagram_bytes"), 65536u);
  ASSERT_EQ(s->actors.size(), 2u);
  EXPECT_EQ(s->actors[1].context_id, 77u);
  EXPECT_EQ(s->actors[1].priv_flags, unsigned{VMCI_PRIVILEGE_FLAG_RESTRICTED});
  ASSERT_EQ(s->steps.size(), 7u);
  EXPECT_EQ(s->steps[4].count, 3);
  EXPECT_EQ(s->steps[5].branches.size(), 2u);
  EXPECT_EQ(s->steps[6].expect.value, VMCI_ERROR_NOT_FOUND);
}

struct BadCase {
  const char* what;
  const char* json;
  const char* path;
  const char* message;  // a part of the message
};

#define HEAD \
  R"("format": 1, "scenario": "bad", "actors": [{"name": "vm1", "role": "guest"}, {"name": "host", "role": "host"}])"

const BadCase kBad[] = {
    {"not JSON", "{", "$", "not valid JSON"},
    {"missing steps", "{" HEAD "}", "$", "'steps'"},
    {"unknown top key",
     "{" HEAD R"(, "step": [])"
     "}",
     "$.step", "unknown key"},
    {"wrong format", R"({"format": 2, "scenario": "a", "actors": [], "steps": []})", "$.format",
     "must be 1"},
    {"bad name", R"({"format": 1, "scenario": "Bad", "actors": [], "steps": []})", "$.scenario",
     "[a-z0-9]"},
    {"reserved actor",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "hypervisor", "role": "guest"}], "steps": []})",
     "$.actors[0].name", "reserved"},
    {"host name for a guest",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "host", "role": "guest"}], "steps": []})",
     "$.actors[0].name", "host"},
    {"unknown op",
     "{" HEAD R"(, "steps": [{"op": "fly", "actor": "vm1"}])"
     "}",
     "$.steps[0].op", "unknown op"},
    {"missing actor",
     "{" HEAD R"(, "steps": [{"op": "get_context_id"}])"
     "}",
     "$.steps[0]", "needs 'actor'"},
    {"actor on sleep",
     "{" HEAD R"(, "steps": [{"op": "sleep", "ms": 1, "actor": "vm1"}])"
     "}",
     "$.steps[0].actor", "takes no actor"},
    {"unknown actor",
     "{" HEAD R"(, "steps": [{"op": "get_context_id", "actor": "vm9"}])"
     "}",
     "$.steps[0].actor", "vm9"},
    {"typo in a key",
     "{" HEAD R"(, "steps": [{"op": "datagram_create_handle", "actor": "vm1", "resorce": 1}])"
     "}",
     "$.steps[0].resorce", "unknown key"},
    {"unknown status",
     "{" HEAD R"(, "steps": [{"op": "get_context_id", "actor": "vm1", "expect": "VMCI_OK"}])"
     "}",
     "$.steps[0].expect", "unknown status"},
    {"bad hex",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": "$a", "dst": "$b", "payload": {"hex": "abc"}}])"
     "}",
     "$.steps[0].payload", "odd"},
    {"bad flag",
     "{" HEAD R"(, "steps": [{"op": "datagram_create_handle", "actor": "vm1", "flags": ["FAST"]}])"
     "}",
     "$.steps[0].flags", "unknown flag"},
    {"bound twice",
     "{" HEAD
     R"(, "steps": [{"op": "get_context_id", "actor": "vm1", "as": "$x"}, {"op": "get_context_id", "actor": "vm1", "as": "$x"}])"
     "}",
     "$.steps[1].as", "bound twice"},
    {"bound in repeat",
     "{" HEAD
     R"(, "steps": [{"op": "repeat", "count": 2, "steps": [{"op": "get_context_id", "actor": "vm1", "as": "$x"}]}])"
     "}",
     "$.steps[0].steps[0].as", "inside repeat"},
    {"bad size",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_alloc", "actor": "vm1", "produce_size": "4KB", "consume_size": 1}])"
     "}",
     "$.steps[0].produce_size", "size"},
    {"unknown event",
     "{" HEAD R"(, "steps": [{"op": "event_subscribe", "actor": "vm1", "event": "GUEST_PAUSED"}])"
     "}",
     "$.steps[0].event", "unknown event"},
    {"bad context",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_destroy_handle", "actor": "vm1", "handle": {"context": "nobody", "resource": 1}}])"
     "}",
     "$.steps[0].handle.context", "neither"},
    {"context id for a host",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "h", "role": "host", "context_id": 5}], "steps": []})",
     "$.actors[0].context_id", "only guests"},
    {"reserved context id",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "v", "role": "guest", "context_id": 2}], "steps": []})",
     "$.actors[0].context_id", "3..4294967294"},
    {"unknown limit",
     R"({"format": 1, "scenario": "a", "hostpeer": {"limits": {"max_fun": 1}}, "actors": [], "steps": []})",
     "$.hostpeer.limits.max_fun", "unknown key"},
};

TEST(Loader, BrokenFilesAreRefusedWithPathAndProblem) {
  for (const auto& c : kBad) {
    SCOPED_TRACE(c.what);
    LoadError error;
    EXPECT_FALSE(parse_scenario("bad.json", c.json, &error).has_value());
    EXPECT_EQ(error.file, "bad.json");
    EXPECT_EQ(error.path, c.path) << error.message;
    EXPECT_NE(error.message.find(c.message), std::string::npos) << error.message;
  }
}

}  // namespace
}  // namespace vmci::scenario
