#include "memory/queue_pair_memory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "vmci/proto/queue.h"

namespace vmci::host {
namespace {

std::set<std::string> shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    names.insert(entry.path().filename());
  }
  return names;
}

TEST(QueuePairMemory, LaidOutInitialisedAndMappable) {
  const vmci_handle handle = VMCI_MAKE_HANDLE(16, 1024);
  std::string error;
  auto memory = QueuePairMemory::create(handle, 8192, 4096, &error);
  ASSERT_TRUE(memory) << error;
  const auto layout = proto::queue_pair_layout(8192, 4096);
  struct stat st {};
  ASSERT_EQ(::fstat(memory->fd(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), layout.total);
  EXPECT_EQ(memory->size(), layout.total);

  void* base = ::mmap(nullptr, layout.total, PROT_READ | PROT_WRITE, MAP_SHARED, memory->fd(), 0);
  ASSERT_NE(base, MAP_FAILED);
  auto* bytes = static_cast<uint8_t*>(base);
  const proto::QueuePairView creator = proto::creator_view(bytes, 8192, 4096);
  const proto::QueuePairView attacher = proto::attacher_view(bytes, 8192, 4096);
  EXPECT_EQ(creator.produce_header->handle.resource, 1024u);
  EXPECT_EQ(creator.consume_header->handle.context, 16u);
  EXPECT_EQ(proto::produce_free_space(creator), 8191);
  EXPECT_EQ(proto::produce_free_space(attacher), 4095);
  const char text[] = "through shared memory";
  ASSERT_EQ(proto::enqueue(creator, text, sizeof text), static_cast<int64_t>(sizeof text));
  char got[sizeof text];
  ASSERT_EQ(proto::dequeue(attacher, got, sizeof got), static_cast<int64_t>(sizeof text));
  EXPECT_STREQ(got, text);
  ::munmap(base, layout.total);
}

TEST(QueuePairMemory, SealedAgainstResizing) {
  std::string error;
  auto memory = QueuePairMemory::create(VMCI_MAKE_HANDLE(16, 1), 4096, 4096, &error);
  ASSERT_TRUE(memory) << error;
  EXPECT_NE(::ftruncate(memory->fd(), 4096), 0) << "shrinking would SIGBUS the peers";
  EXPECT_NE(::ftruncate(memory->fd(), 1 << 20), 0);
  EXPECT_EQ(::fcntl(memory->fd(), F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

TEST(QueuePairMemory, LeavesNothingInDevShmAndIsCloseOnExec) {
  const auto before = shm_entries();
  std::string error;
  auto memory = QueuePairMemory::create(VMCI_MAKE_HANDLE(16, 1), 65536, 65536, &error);
  ASSERT_TRUE(memory) << error;
  EXPECT_EQ(shm_entries(), before);
  EXPECT_TRUE(::fcntl(memory->fd(), F_GETFD) & FD_CLOEXEC);
}

}  // namespace
}  // namespace vmci::host
