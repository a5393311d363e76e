#include "process_actor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace vmci::scenario {
namespace {

TEST(ProcessActor, IsAProcessOfItsOwnThatKillEnds) {
  ProcessActor child({{"name", "vm1"}, {"host", false}, {"priv_flags", 0}}, VMCI_SCENARIO_BIN);
  ASSERT_GT(child.pid(), 0);
  EXPECT_NE(child.pid(), ::getpid());
  const auto answer = child.request({{"op", "leftovers"}});  // it answers: it runs
  EXPECT_TRUE(answer.contains("items")) << answer.dump();
  EXPECT_EQ(::kill(child.pid(), 0), 0);
  child.kill();
  EXPECT_EQ(::kill(child.pid(), 0), -1);  // reaped: no such process
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(child.request({{"op", "leftovers"}}).contains("lost"));
}

TEST(ProcessActor, AChildThatCannotConnectSaysWhy) {
  ProcessActor child({{"name", "vm1"}, {"host", false}, {"priv_flags", 0}}, VMCI_SCENARIO_BIN);
  const auto answer = child.request({{"op", "connect"}, {"socket", "/nonexistent/hostpeer.sock"}});
  EXPECT_LT(answer.value("status", 0), 0) << answer.dump();
  EXPECT_FALSE(answer.value("error", "").empty()) << answer.dump();
}

}  // namespace
}  // namespace vmci::scenario
