// Options::log: an embedded hostpeer's messages reach a plain callback with
// their level, from Options::log_level up, and nothing below it.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "processes.h"
#include "vmci/host/hostpeer.h"

namespace vmci::testing {
namespace {

using host::LogLevel;

// What the callback was given. Thread-safe: hostpeer calls it on its threads.
class Collected {
 public:
  host::LogCallback callback() {
    return [this](LogLevel level, std::string_view message) {
      std::lock_guard lock(mutex_);
      lines_.push_back({level, std::string(message)});
    };
  }
  // How many lines at `level` contain `text`.
  size_t count(LogLevel level, const std::string& text) {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& line : lines_) n += line.level == level && line.text.find(text) != std::string::npos;
    return n;
  }
  size_t below(LogLevel least) {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& line : lines_) n += line.level < least;
    return n;
  }

 private:
  struct Line {
    LogLevel level;
    std::string text;
  };
  std::mutex mutex_;
  std::vector<Line> lines_;
};

TEST(HostPeerLog, MessagesReachTheCallbackWithTheirLevelAndNoStamp) {
  Collected collected;
  host::Options options;
  options.log = collected.callback();
  options.log_level = LogLevel::kDebug;
  EmbeddedHostpeer hostpeer(options);
  // The server says where it listens, at info, as the text alone.
  EXPECT_EQ(collected.count(LogLevel::kInfo, "listening on " + hostpeer.socket_path()), 1u);
  EXPECT_EQ(collected.count(LogLevel::kInfo, "[info]"), 0u);
}

TEST(HostPeerLog, MessagesBelowTheLevelAreNotPassed) {
  Collected collected;
  host::Options options;
  options.log = collected.callback();
  options.log_level = LogLevel::kWarn;
  EmbeddedHostpeer hostpeer(options);
  auto guest = connect(hostpeer.socket_path(), Role::kGuest);
  ASSERT_TRUE(guest);
  EXPECT_EQ(collected.count(LogLevel::kInfo, "listening on"), 0u);
  EXPECT_EQ(collected.below(LogLevel::kWarn), 0u);
}

TEST(HostPeerLog, NoCallbackIsNoOutputAndNoCrash) {
  host::Options options;  // log empty
  EmbeddedHostpeer hostpeer(options);
  auto guest = connect(hostpeer.socket_path(), Role::kGuest);
  EXPECT_TRUE(guest);
}

}  // namespace
}  // namespace vmci::testing
