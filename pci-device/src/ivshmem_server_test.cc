// ivshmem_server_test.cc: the greeting as QEMU's ivshmem reads it, the
// eventfds, one client at a time, hang-ups, misbehaving clients, the socket.
#include "ivshmem_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "ivshmem_test_client.h"
#include "quiet_logger.h"

namespace vmci::pcidev {
namespace {

using namespace std::chrono_literals;

std::string temp_socket_path() {
  static int n = 0;
  return (std::filesystem::temp_directory_path() /
          ("ivshmem-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".sock"))
      .string();
}

class IvshmemServerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server = IvshmemServer::listen(path, {3, 8192}, test_support::quiet_logger(), &error);
    ASSERT_TRUE(server) << error;
    thread = std::thread([this] { server->serve(); });
  }
  void TearDown() override {
    if (server) server->stop();
    if (thread.joinable()) thread.join();
  }
  // Waits until the server has seen the hang-up of its client.
  bool wait_disconnected() {
    for (int i = 0; i < 200 && server->connected(); ++i) std::this_thread::sleep_for(10ms);
    return !server->connected();
  }

  std::string path = temp_socket_path();
  std::unique_ptr<IvshmemServer> server;
  std::thread thread;
};

TEST_F(IvshmemServerTest, GreetsWithVersionIdSharedMemoryThenItsOwnVectors) {
  UniqueFd qemu = connect_to(path);
  ASSERT_TRUE(qemu);
  Greeted g = read_greeting(qemu.get(), 3);
  EXPECT_FALSE(readable(qemu.get(), 50));  // nothing more: no other peers
  ASSERT_TRUE(server->wait_for_client(2s));
  EXPECT_EQ(server->clients_greeted(), 1u);

  // The shared memory is the server's: bytes written by one side are seen
  // by the other, and its size is what QEMU will make BAR2.
  struct stat st;
  ASSERT_EQ(::fstat(g.shm.get(), &st), 0);
  EXPECT_EQ(st.st_size, 8192);
  void* map = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, g.shm.get(), 0);
  ASSERT_NE(map, MAP_FAILED);
  static_cast<uint8_t*>(map)[100] = 0x5a;
  EXPECT_EQ(server->shared_memory()[100], 0x5a);
  ::munmap(map, 8192);
}

TEST_F(IvshmemServerTest, TheSharedMemoryIsSealedAtItsSize) {
  // QEMU's proxy passes BAR2's file on as guest memory; hostpeer takes only
  // files sealed against shrinking.
  UniqueFd qemu = connect_to(path);
  ASSERT_TRUE(qemu);
  Greeted g = read_greeting(qemu.get(), 3);
  const int seals = ::fcntl(g.shm.get(), F_GET_SEALS);
  EXPECT_TRUE(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW));
  EXPECT_NE(::ftruncate(g.shm.get(), 4096), 0);
}

TEST_F(IvshmemServerTest, NotifyWritesThatVectorsEventfdOnly) {
  UniqueFd qemu = connect_to(path);
  Greeted g = read_greeting(qemu.get(), 3);
  ASSERT_TRUE(server->wait_for_client(2s));
  for (uint32_t k = 0; k < 3; ++k) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(server->notify(k));
    for (uint32_t j = 0; j < 3; ++j) EXPECT_EQ(readable(g.vectors[j].get(), 0), j == k);
    uint64_t count = 0;
    ASSERT_EQ(::read(g.vectors[k].get(), &count, 8), 8);
    EXPECT_EQ(count, 1u);
  }
}

TEST_F(IvshmemServerTest, NotifyFailsWithoutAClientAndPastTheLastVector) {
  EXPECT_FALSE(server->notify(0));
  UniqueFd qemu = connect_to(path);
  Greeted g = read_greeting(qemu.get(), 3);
  ASSERT_TRUE(server->wait_for_client(2s));
  EXPECT_FALSE(server->notify(3));
  EXPECT_TRUE(server->notify(2));
}

TEST_F(IvshmemServerTest, AHungUpClientTakesItsVectorsTheNextGetsFreshOnes) {
  Greeted first;
  {
    UniqueFd qemu = connect_to(path);
    first = read_greeting(qemu.get(), 3);
    ASSERT_TRUE(server->wait_for_client(2s));
    server->shared_memory()[0] = 1;  // as a guest's bridge would leave it
  }  // QEMU dies
  ASSERT_TRUE(wait_disconnected());
  EXPECT_FALSE(server->notify(0));

  UniqueFd qemu = connect_to(path);
  Greeted second = read_greeting(qemu.get(), 3);
  ASSERT_TRUE(server->wait_for_client(2s));
  EXPECT_EQ(server->shared_memory()[0], 0);  // a new guest starts from zero
  ASSERT_TRUE(server->notify(0));
  EXPECT_TRUE(readable(second.vectors[0].get(), 0));
  EXPECT_FALSE(readable(first.vectors[0].get(), 0));  // the dead QEMU's copy is not it
}

TEST_F(IvshmemServerTest, ASecondClientIsTurnedAwayWhileTheFirstIsConnected) {
  UniqueFd qemu = connect_to(path);
  Greeted g = read_greeting(qemu.get(), 3);
  ASSERT_TRUE(server->wait_for_client(2s));
  UniqueFd intruder = connect_to(path);
  ASSERT_TRUE(intruder);
  ServerMessage m;
  EXPECT_FALSE(receive(intruder.get(), &m));  // closed without a word
  ASSERT_TRUE(server->notify(1));
  EXPECT_TRUE(readable(g.vectors[1].get(), 0));  // the first keeps its vectors
}

TEST_F(IvshmemServerTest, AClientThatSendsBytesIsDropped) {
  UniqueFd qemu = connect_to(path);
  Greeted g = read_greeting(qemu.get(), 3);
  ASSERT_TRUE(server->wait_for_client(2s));
  ASSERT_EQ(::write(qemu.get(), "x", 1), 1);
  ASSERT_TRUE(wait_disconnected());
  EXPECT_FALSE(server->notify(0));
  ServerMessage m;
  EXPECT_FALSE(receive(qemu.get(), &m));  // EOF
}

TEST_F(IvshmemServerTest, TheSocketIsOwnerOnlyAndRemovedWithTheServer) {
  struct stat st;
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server->stop();
  thread.join();
  server.reset();
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
}

TEST(IvshmemServerListen, ReplacesAStaleSocketRefusesALiveOneAndOtherFiles) {
  std::string path = temp_socket_path();
  std::string error;
  {
    // A stale socket: bound, then its server gone without removing it.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  auto live = IvshmemServer::listen(path, {}, test_support::quiet_logger(), &error);
  ASSERT_TRUE(live) << error;
  EXPECT_FALSE(IvshmemServer::listen(path, {}, test_support::quiet_logger(), &error));
  EXPECT_NE(error.find("live"), std::string::npos) << error;
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0);  // the refusal left the live one's socket

  std::string file = temp_socket_path();
  { FILE* f = std::fopen(file.c_str(), "w"); ASSERT_TRUE(f); std::fclose(f); }
  EXPECT_FALSE(IvshmemServer::listen(file, {}, test_support::quiet_logger(), &error));
  EXPECT_NE(error.find("not a socket"), std::string::npos) << error;
  ::unlink(file.c_str());
}

TEST(IvshmemServerListen, RefusesBadOptions) {
  struct Case {
    uint32_t vectors;
    uint64_t shm_size;
  } cases[] = {{0, 4096}, {1025, 4096}, {1, 0}, {1, 2048}, {1, 12288}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.vectors << " " << c.shm_size);
    std::string error;
    EXPECT_FALSE(IvshmemServer::listen(temp_socket_path(), {c.vectors, c.shm_size},
                                       test_support::quiet_logger(), &error));
    EXPECT_FALSE(error.empty());
  }
}

TEST(IvshmemServerListen, StopBeforeServeMakesServeReturn) {
  std::string error;
  auto server = IvshmemServer::listen(temp_socket_path(), {}, test_support::quiet_logger(), &error);
  ASSERT_TRUE(server) << error;
  server->stop();
  server->serve();  // returns at once
  EXPECT_FALSE(server->wait_for_client(1ms));
}

}  // namespace
}  // namespace vmci::pcidev
