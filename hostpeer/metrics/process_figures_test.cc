// process_figures_test.cc: the figures read from /proc/self move as this
// process works, opens descriptors and grows.
#include "metrics/process_figures.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <vector>

namespace vmci::host {
namespace {

TEST(ProcessFigures, ReadFromProcSelfTheyFollowThisProcess) {
  std::string error;
  const auto before = read_process_figures(&error);
  ASSERT_TRUE(before) << error;
  EXPECT_GT(before->resident_bytes, 0u);
  EXPECT_GE(before->virtual_bytes, before->resident_bytes);
  EXPECT_GE(before->max_fds, before->open_fds);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(before->start_time_seconds, now + 1);
  EXPECT_GT(before->start_time_seconds, now - 24 * 3600);  // a test process started today

  const int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  // Burn some CPU time: at least a clock tick (10 ms) of it.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(60);
  volatile uint64_t spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
  const auto after = read_process_figures(&error);
  ::close(fd);
  ASSERT_TRUE(after) << error;
  EXPECT_EQ(after->open_fds, before->open_fds + 1);
  EXPECT_GT(after->cpu_seconds, before->cpu_seconds);
  EXPECT_EQ(after->start_time_seconds, before->start_time_seconds);
}

}  // namespace
}  // namespace vmci::host
