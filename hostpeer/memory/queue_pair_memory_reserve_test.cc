#include "memory/queue_pair_memory_reserve.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmci/proto/queue.h"

namespace vmci::host {
namespace {

// The handle in a pair's first queue header, read from its file.
vmci_handle header_handle(const QueuePairMemory& memory) {
  vmci_queue_header header{};
  EXPECT_EQ(::pread(memory.fd(), &header, sizeof header, 0), static_cast<ssize_t>(sizeof header));
  return header.handle;
}

ino_t inode_of(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return st.st_ino;
}

TEST(QueuePairMemoryReserve, AnAllocWithNothingReadyMakesItsMemoryThenRestockMakesTheNext) {
  QueuePairMemoryReserve reserve;
  std::string error;
  reserve.restock();  // no size known yet: nothing to make
  EXPECT_EQ(reserve.ready(), 0u);
  auto first = reserve.take(VMCI_MAKE_HANDLE(16, 1), 65536, 65536, &error);
  ASSERT_TRUE(first) << error;
  EXPECT_EQ(reserve.ready(), 0u);
  reserve.restock();
  EXPECT_EQ(reserve.ready(), QueuePairMemoryReserve::kReady);
  auto second = reserve.take(VMCI_MAKE_HANDLE(16, 2), 65536, 65536, &error);
  ASSERT_TRUE(second) << error;
  EXPECT_EQ(reserve.ready(), QueuePairMemoryReserve::kReady - 1);
  // Ready-made memory is a pair's like any: its size, its headers, its own file.
  EXPECT_EQ(second->size(), proto::queue_pair_layout(65536, 65536).total);
  EXPECT_EQ(header_handle(*second).resource, 2u);
  EXPECT_NE(inode_of(first->fd()), inode_of(second->fd()));
  EXPECT_NE(inode_of(first->status_fd()), inode_of(second->status_fd()));
}

TEST(QueuePairMemoryReserve, APairOfAnotherSizeDropsWhatIsReady) {
  QueuePairMemoryReserve reserve;
  std::string error;
  ASSERT_TRUE(reserve.take(VMCI_MAKE_HANDLE(16, 1), 4096, 4096, &error)) << error;
  reserve.restock();
  ASSERT_EQ(reserve.ready(), QueuePairMemoryReserve::kReady);
  auto other = reserve.take(VMCI_MAKE_HANDLE(16, 2), 8192, 4096, &error);
  ASSERT_TRUE(other) << error;
  EXPECT_EQ(other->size(), proto::queue_pair_layout(8192, 4096).total);
  EXPECT_EQ(reserve.ready(), 0u);
  reserve.restock();  // now of the new size
  EXPECT_EQ(reserve.ready(), QueuePairMemoryReserve::kReady);
  auto same = reserve.take(VMCI_MAKE_HANDLE(16, 3), 8192, 4096, &error);
  ASSERT_TRUE(same) << error;
  EXPECT_EQ(same->size(), other->size());
  reserve.clear();
  EXPECT_EQ(reserve.ready(), 0u);
  reserve.restock();  // cleared: no size to make
  EXPECT_EQ(reserve.ready(), 0u);
}

}  // namespace
}  // namespace vmci::host
