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
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": {"context": 2, "resource": 1},
                     "dst": {"context": 2, "resource": 2}, "payload": {"hex": "abc"}}])"
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
    {"actor on repeat",
     "{" HEAD R"(, "steps": [{"op": "repeat", "actor": "vm1", "count": 1, "steps": []}])"
     "}",
     "$.steps[0].actor", "takes no actor"},
    {"actor on restart_hostpeer",
     "{" HEAD R"(, "steps": [{"op": "restart_hostpeer", "actor": "vm1"}])"
     "}",
     "$.steps[0].actor", "takes no actor"},
    {"expect on a wait op",
     "{" HEAD R"(, "steps": [{"op": "expect_nothing", "actor": "vm1", "expect": 0}])"
     "}",
     "$.steps[0].expect", "unknown key"},
    {"bound in a parallel inside repeat",
     "{" HEAD
     R"(, "steps": [{"op": "repeat", "count": 2, "steps": [{"op": "parallel", "branches": [[{"op": "get_context_id", "actor": "vm1", "as": "$x"}]]}]}])"
     "}",
     "$.steps[0].steps[0].branches[0][0].as", "inside repeat"},
    {"range upside down",
     "{" HEAD
     R"(, "steps": [{"op": "get_context_id", "actor": "vm1", "expect": {"min": 5, "max": 1}}])"
     "}",
     "$.steps[0].expect", "min is greater"},
    {"size too large",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_alloc", "actor": "vm1", "produce_size": "99999999999999GiB", "consume_size": 1}])"
     "}",
     "$.steps[0].produce_size", "too large"},
    {"digits too many",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_alloc", "actor": "vm1", "produce_size": "99999999999999999999999", "consume_size": 1}])"
     "}",
     "$.steps[0].produce_size", "too large"},
    {"negative seed",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_enqueue", "actor": "vm1", "qpair": "$q", "data": {"pattern": {"seed": -1, "length": 1}}}])"
     "}",
     "$.steps[0].data", "seed"},
    {"two data kinds",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_enqueue", "actor": "vm1", "qpair": "$q", "data": {"text": "a", "hex": "00"}}])"
     "}",
     "$.steps[0].data", "data is one of"},
    {"queue pair not a variable",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_detach", "actor": "vm1", "qpair": {"context": 2, "resource": 1}}])"
     "}",
     "$.steps[0].qpair", "variable"},
    {"bad event data key",
     "{" HEAD
     R"(, "steps": [{"op": "expect_event", "actor": "vm1", "event": "CTX_REMOVED", "data": {"cid": 1}}])"
     "}",
     "$.steps[0].data.cid", "unknown key"},
    {"two actors of one name",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "v", "role": "guest"}, {"name": "v", "role": "guest"}], "steps": []})",
     "$.actors[1].name", "twice"},
    {"restricted host",
     R"({"format": 1, "scenario": "a", "actors": [{"name": "h", "role": "host", "priv_flags": ["RESTRICTED"]}], "steps": []})",
     "$.actors[0].priv_flags", "only guests"},
    {"a VMCI status for a vsock op",
     "{" HEAD
     R"(, "steps": [{"op": "vsock_connect", "actor": "vm1", "cid": "host", "port": 1, "expect": "VMCI_ERROR_NO_ACCESS"}])"
     "}",
     "$.steps[0].expect", "unknown errno name"},
    {"an errno for a VMCI op",
     "{" HEAD R"(, "steps": [{"op": "get_context_id", "actor": "vm1", "expect": "ECONNRESET"}])"
     "}",
     "$.steps[0].expect", "unknown status name"},
    {"bad shutdown mode",
     "{" HEAD
     R"(, "steps": [{"op": "vsock_shutdown", "actor": "vm1", "stream": "$s", "how": "BOTH"}])"
     "}",
     "$.steps[0].how", "\"RD\", \"WR\" or \"RDWR\""},
    {"a port too large",
     "{" HEAD R"(, "steps": [{"op": "vsock_listen", "actor": "vm1", "port": 4294967295}])"
     "}",
     "$.steps[0].port", ""},
    {"a stream that is not a variable",
     "{" HEAD
     R"(, "steps": [{"op": "vsock_send", "actor": "vm1", "stream": 3, "data": {"text": "x"}}])"
     "}",
     "$.steps[0].stream", "variable"},
    {"an unknown key of an address",
     "{" HEAD
     R"(, "steps": [{"op": "vsock_recvfrom", "actor": "vm1", "socket": "$d", "size": 1, "expect_from": {"context": 2}}])"
     "}",
     "$.steps[0].expect_from.context", "unknown key"},
    {"a misspelt op names the nearest",
     "{" HEAD R"(, "steps": [{"op": "datagram_sned", "actor": "vm1"}])"
     "}",
     "$.steps[0].op", "unknown op 'datagram_sned' (did you mean 'datagram_send'?)"},
    {"a misspelt key names the nearest",
     "{" HEAD R"(, "steps": [{"op": "datagram_create_handle", "actor": "vm1", "resorce": 1}])"
     "}",
     "$.steps[0].resorce", "unknown key 'resorce' (did you mean 'resource'?)"},
    {"a misspelt top-level key names the nearest", "{" HEAD R"(, "steps": [], "descripton": "x"})",
     "$.descripton", "did you mean 'description'?"},
    {"a variable nothing binds",
     "{" HEAD R"(, "steps": [{"op": "datagram_destroy_handle", "actor": "vm1", "handle": "$nope"}])"
     "}",
     "$.steps[0].handle", "variable $nope is used before any step binds it"},
    {"a variable bound only later",
     "{" HEAD
     R"(, "steps": [{"op": "sleep", "ms": 1}, {"op": "doorbell_notify", "actor": "vm1", "handle": "$d"},
                    {"op": "doorbell_create", "actor": "vm1", "as": "$d"}])"
     "}",
     "$.steps[1].handle", "used before"},
    {"a step's own variable in its keys",
     "{" HEAD
     R"(, "steps": [{"op": "qpair_alloc", "actor": "vm1", "handle": "$q.handle", "produce_size": 1,
                     "consume_size": 1, "as": "$q"}])"
     "}",
     "$.steps[0].handle", "used before"},
    {"a misspelt variable names the bound one",
     "{" HEAD
     R"(, "steps": [{"op": "doorbell_create", "actor": "vm1", "as": "$bell"},
                    {"op": "doorbell_notify", "actor": "vm1", "handle": "$bel"}])"
     "}",
     "$.steps[1].handle", "did you mean '$bell'?"},
    {"a capture of an unknown type",
     "{" HEAD
     R"(, "steps": [{"op": "expect_datagram", "actor": "vm1", "handle": {"context": 2, "resource": 1},
                     "capture": {"$n": {"offset": 0, "type": "u24"}}}])"
     "}",
     "$.steps[0].capture.$n.type", "\"u8\", \"u16\""},
    {"a capture without an offset",
     "{" HEAD
     R"(, "steps": [{"op": "expect_datagram", "actor": "vm1", "handle": {"context": 2, "resource": 1},
                     "capture": {"$n": {"type": "u8"}}}])"
     "}",
     "$.steps[0].capture.$n", "needs 'offset' and 'type'"},
    {"a capture that binds a bound variable",
     "{" HEAD
     R"(, "steps": [{"op": "get_context_id", "actor": "vm1", "as": "$n"},
                    {"op": "expect_datagram", "actor": "vm1", "handle": {"context": 2, "resource": 1},
                     "capture": {"$n": {"offset": 0, "type": "u8"}}}])"
     "}",
     "$.steps[1].capture.$n", "bound twice"},
    {"a capture inside repeat",
     "{" HEAD
     R"(, "steps": [{"op": "repeat", "count": 2, "steps": [{"op": "expect_datagram", "actor": "vm1",
                     "handle": {"context": 2, "resource": 1}, "capture": {"$n": {"offset": 0, "type": "u8"}}}]}])"
     "}",
     "$.steps[0].steps[0].capture.$n", "inside repeat"},
    {"capture on an op that sends",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": {"context": 2, "resource": 1},
                     "dst": {"context": 2, "resource": 1}, "payload": {"zeros": 1},
                     "capture": {"$n": {"offset": 0, "type": "u8"}}}])"
     "}",
     "$.steps[0].capture", "unknown key"},
    {"a field too wide for its type",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": {"context": 2, "resource": 1},
                     "dst": {"context": 2, "resource": 1}, "payload": {"fields": [{"u8": 256}]}}])"
     "}",
     "$.steps[0].payload.fields[0].u8", "does not fit in 8 bits"},
    {"a field of an unknown type",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": {"context": 2, "resource": 1},
                     "dst": {"context": 2, "resource": 1}, "payload": {"fields": [{"i32": -1}]}}])"
     "}",
     "$.steps[0].payload.fields[0]", "data is one of"},
    {"a field's unbound variable",
     "{" HEAD
     R"(, "steps": [{"op": "datagram_send", "actor": "vm1", "src": {"context": 2, "resource": 1},
                     "dst": {"context": 2, "resource": 1}, "payload": {"fields": [{"handle": "$h"}]}}])"
     "}",
     "$.steps[0].payload.fields[0].handle", "used before"},
};

// Found by the scenario fuzz target: nlohmann::json throws out_of_range,
// not parse_error, for a number it cannot hold, and the loader let it out.
TEST(Loader, ANumberTooLargeForJsonIsRefusedNotThrown) {
  LoadError error;
  EXPECT_FALSE(parse_scenario("big.json", R"({"format": 1e7777777})", &error));
  EXPECT_EQ(error.path, "$");
  EXPECT_NE(error.message.find("not valid JSON"), std::string::npos) << error.message;
}

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

// Every op of the format loads, also those this runner does not play yet.
TEST(Loader, EveryOpOfTheFormatLoads) {
  const char* text = R"({
    "format": 1, "scenario": "all-ops",
    "actors": [{"name": "host", "role": "host"}, {"name": "vm1", "role": "guest", "isolation": "process"}],
    "steps": [
      {"op": "get_context_id", "actor": "vm1", "as": "$cid", "x-comment": "ignored"},
      {"op": "datagram_create_handle", "actor": "host", "resource": 5, "flags": ["DELAYED_CB"],
       "priv_flags": ["TRUSTED"], "as": "$h"},
      {"op": "datagram_destroy_handle", "actor": "host", "handle": "$h"},
      {"op": "datagram_send", "actor": "vm1", "src": {"context": "$cid", "resource": 1},
       "dst": {"context": "well_known", "resource": 3}, "payload": {"base64": "AAEC"}},
      {"op": "doorbell_create", "actor": "vm1", "as": "$d"},
      {"op": "doorbell_create", "actor": "host", "handle": {"context": "host", "resource": 9}},
      {"op": "doorbell_notify", "actor": "host", "handle": "$d", "priv_flags": []},
      {"op": "doorbell_destroy", "actor": "vm1", "handle": "$d"},
      {"op": "event_subscribe", "actor": "host", "event": "QP_PEER_ATTACH", "as": "$s"},
      {"op": "event_unsubscribe", "actor": "host", "subscription": "$s"},
      {"op": "qpair_alloc", "actor": "vm1", "produce_size": "64KiB", "consume_size": "1MiB",
       "peer": "host", "flags": ["LOCAL"], "as": "$q", "timeout_ms": 100},
      {"op": "qpair_enqueue", "actor": "vm1", "qpair": "$q", "data": {"zeros": 4096}},
      {"op": "qpair_dequeue", "actor": "vm1", "qpair": "$q", "size": 10, "expect_data": {"text": "a"}},
      {"op": "qpair_peek", "actor": "vm1", "qpair": "$q", "size": 10},
      {"op": "qpair_produce_free_space", "actor": "vm1", "qpair": "$q"},
      {"op": "qpair_produce_buf_ready", "actor": "vm1", "qpair": "$q"},
      {"op": "qpair_consume_free_space", "actor": "vm1", "qpair": "$q"},
      {"op": "qpair_consume_buf_ready", "actor": "vm1", "qpair": "$q"},
      {"op": "qpair_get_produce_indexes", "actor": "vm1", "qpair": "$q", "expect_indexes": {"tail": 0, "head": 0}},
      {"op": "qpair_get_consume_indexes", "actor": "vm1", "qpair": "$q"},
      {"op": "qpair_write_all", "actor": "vm1", "qpair": "$q", "data": {"pattern": {"seed": 1, "length": "1MiB"}},
       "chunk": 512, "notify": "$d", "timeout_ms": 5000},
      {"op": "qpair_read_all", "actor": "vm1", "qpair": "$q", "length": "1MiB",
       "expect_data": {"pattern": {"seed": 1, "length": "1MiB"}}, "wait_doorbell": "$d"},
      {"op": "expect_datagram", "actor": "host", "handle": "$h", "src": "$h", "payload": {"hex": ""}},
      {"op": "expect_doorbell", "actor": "vm1", "handle": "$d", "timeout_ms": 10},
      {"op": "expect_event", "actor": "host", "event": "QP_PEER_DETACH",
       "data": {"peer_id": "vm1", "handle": "$q.handle"}},
      {"op": "expect_nothing", "actor": "vm1", "within_ms": 10},
      {"op": "hold_callbacks", "actor": "vm1"},
      {"op": "release_callbacks", "actor": "vm1", "note": "go"},
      {"op": "qpair_detach", "actor": "vm1", "qpair": "$q", "expect": "VMCI_SUCCESS"},
      {"op": "sleep", "ms": 1},
      {"op": "parallel", "branches": [[{"op": "kill", "actor": "vm1"}], [{"op": "disconnect", "actor": "host"}]]},
      {"op": "repeat", "count": 2, "steps": [{"op": "reconnect", "actor": "vm1"}]},
      {"op": "restart_hostpeer"}
    ]
  })";
  LoadError error;
  auto s = parse_scenario("all.json", text, &error);
  ASSERT_TRUE(s.has_value()) << error.describe();
  EXPECT_EQ(s->steps.size(), 33u);
  EXPECT_TRUE(s->restarts_hostpeer);
  EXPECT_TRUE(s->actors[1].process);
}

TEST(Loader, FieldsAndCapturesLoadAndBindInFileOrder) {
  LoadError error;
  auto s = parse_scenario("c.json", R"({"format": 1, "scenario": "c",
    "actors": [{"name": "vm1", "role": "guest"}, {"name": "host", "role": "host"}],
    "steps": [
      {"op": "datagram_create_handle", "actor": "host", "as": "$svc"},
      {"op": "datagram_create_handle", "actor": "vm1", "as": "$me"},
      {"op": "datagram_send", "actor": "vm1", "src": "$me", "dst": "$svc",
       "payload": {"fields": [{"u32": 7}, {"u64": 18446744073709551615}, {"handle": "$me"},
                              {"text": "hi"}, {"u8": 255}, {"u16": 65535}]}},
      {"op": "expect_datagram", "actor": "host", "handle": "$svc",
       "capture": {"$seven": {"offset": 0, "type": "u32"}, "$peer": {"offset": "12", "type": "handle"}}},
      {"op": "parallel", "branches": [
        [{"op": "get_context_id", "actor": "vm1", "as": "$cid"}],
        [{"op": "datagram_send", "actor": "host", "src": "$svc", "dst": "$peer",
          "payload": {"fields": [{"u32": "$seven"}, {"u32": "$cid"}]}}]]}
    ]})",
                          &error);
  ASSERT_TRUE(s.has_value()) << error.describe();
  EXPECT_EQ(s->steps[3].args["capture"].size(), 2u);
}

TEST(Loader, AVsockOpExpectsAnErrnoName) {
  LoadError error;
  auto s = parse_scenario("v.json", R"({"format": 1, "scenario": "v",
    "actors": [{"name": "vm1", "role": "guest"}],
    "steps": [{"op": "vsock_connect", "actor": "vm1", "cid": "host", "port": 1, "expect": "ECONNRESET"},
              {"op": "vsock_dgram_bind", "actor": "vm1", "port": "any", "expect": "EWOULDBLOCK"}]})",
                          &error);
  ASSERT_TRUE(s.has_value()) << error.describe();
  EXPECT_EQ(s->steps[0].expect.value, -ECONNRESET);
  EXPECT_EQ(s->steps[0].expect.describe(), "ECONNRESET (-104)");
  EXPECT_EQ(s->steps[1].expect.value, -EAGAIN);  // the other name of one value
}

TEST(Expectation, MatchesAsTheFormatSays) {
  const Expectation any;
  EXPECT_TRUE(any.matches(0));
  EXPECT_TRUE(any.matches(69632));
  EXPECT_FALSE(any.matches(VMCI_ERROR_NO_RESOURCES));
  const Expectation exact{Expectation::Kind::kExact, VMCI_ERROR_NOT_FOUND, 0, 0};
  EXPECT_TRUE(exact.matches(VMCI_ERROR_NOT_FOUND));
  EXPECT_FALSE(exact.matches(VMCI_SUCCESS));
  EXPECT_EQ(exact.describe().rfind("VMCI_ERROR_NOT_FOUND (", 0), 0u) << exact.describe();
  const Expectation range{Expectation::Kind::kRange, 0, -2, 24};
  EXPECT_TRUE(range.matches(-2));
  EXPECT_TRUE(range.matches(24));
  EXPECT_FALSE(range.matches(25));
}

}  // namespace
}  // namespace vmci::scenario
