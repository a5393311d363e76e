// The daemon as a user runs it: its socket, handshake and shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "processes.h"
#include "vmci/guest/driver.h"
#include "vmci/queue_pair.h"

namespace vmci::testing {
namespace {

TEST(Daemon, SocketIsCreatedWithMode0600) {
  Daemon daemon;
  struct stat st {};
  ASSERT_EQ(::stat(daemon.socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Daemon, SigtermShutsDownCleanlyAndRemovesTheSocket) {
  Daemon daemon;
  EXPECT_EQ(daemon.stop(), 0);
  EXPECT_FALSE(std::filesystem::exists(daemon.socket_path()));
}

TEST(Daemon, SigintShutsDownCleanlyToo) {
  Daemon daemon;
  daemon.process().signal(SIGINT);
  const int status = daemon.process().wait(10000);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(std::filesystem::exists(daemon.socket_path()));
}

TEST(Daemon, SecondDaemonOnALiveSocketRefusesToStart) {
  Daemon daemon;
  ChildProcess second({VMCI_HOSTPEER_BIN, "--socket", daemon.socket_path()}, {});
  const int status = second.wait(10000);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_TRUE(socket_answers(daemon.socket_path())) << "the first daemon still serves";
}

// hostpeer runs as an unprivileged user; root can open the socket file
// anyway, so only the SO_PEERCRED check stands between them.
constexpr int kNobody = 65534;

TEST(Daemon, OtherUsersAreRefusedBySoPeercred) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run hostpeer as another user";
  Daemon daemon({}, kNobody);
  Peer root;
  const std::string refused = root.call("connect " + daemon.socket_path() + " guest");
  EXPECT_EQ(refused.rfind("-7 ", 0), 0u) << refused;  // VMCI_ERROR_NO_ACCESS
  EXPECT_NE(refused.find("user 0"), std::string::npos) << refused;
}

TEST(Daemon, AllowedGuestUserMayNotBeHost) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run hostpeer as another user";
  Daemon daemon({"--allow-guest-uid", "0"}, kNobody);
  Peer guest, host;
  EXPECT_EQ(guest.call("connect " + daemon.socket_path() + " guest"), "0 16");
  const std::string refused = host.call("connect " + daemon.socket_path() + " host");
  EXPECT_EQ(refused.rfind("-7 ", 0), 0u) << refused;
  EXPECT_NE(refused.find("host role"), std::string::npos) << refused;
}

TEST(Daemon, AllowedHostUserMayBeHost) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to run hostpeer as another user";
  Daemon daemon({"--allow-host-uid", "0"}, kNobody);
  Peer host;
  EXPECT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
}

// A process's open descriptors: number -> what they point at.
std::map<std::string, std::string> file_descriptors(pid_t pid) {
  std::map<std::string, std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec) out[entry.path().filename()] = target.string();
  }
  return out;
}

// Everything shared is an anonymous memfd: nothing appears in /dev/shm or
// next to the socket, so nothing can be guessed, opened by another process,
// or left behind; each descriptor hostpeer holds is one.
TEST(Daemon, NothingSharedHasANameInDevShmOrTheFileSystem) {
  const auto listing = [](const std::filesystem::path& dir) {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      names.insert(entry.path().filename());
    }
    return names;
  };
  const auto shm_before = listing("/dev/shm");
  Daemon daemon;
  const auto at_start = file_descriptors(daemon.process().pid());
  int status;
  std::string error;
  auto host = guest::Driver::connect(
      {.socket_path = daemon.socket_path(), .role = proto::Role::kHost}, &status, &error);
  ASSERT_TRUE(host) << error;
  auto guest = guest::Driver::connect({.socket_path = daemon.socket_path()}, &status, &error);
  ASSERT_TRUE(guest) << error;
  // A pair, doorbells rung both ways (ring channels), datagrams (a lane).
  std::unique_ptr<QueuePair> host_qp, guest_qp;
  vmci_handle pair = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->qpair_alloc(&host_qp, &pair, 65536, 65536, VMCI_INVALID_ID, 0, 0), VMCI_SUCCESS);
  ASSERT_EQ(guest->qpair_alloc(&guest_qp, &pair, 65536, 65536, VMCI_INVALID_ID, 0, 0),
            VMCI_SUCCESS);
  vmci_handle host_bell = VMCI_INVALID_HANDLE, guest_bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->doorbell_create(&host_bell, 0, 0, [] {}), VMCI_SUCCESS);
  ASSERT_EQ(guest->doorbell_create(&guest_bell, 0, 0, [] {}), VMCI_SUCCESS);
  vmci_handle sink = VMCI_INVALID_HANDLE, src = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                         &sink),
            VMCI_SUCCESS);
  ASSERT_EQ(guest->datagram_create_handle(VMCI_INVALID_ID, 0, 0, [](vmci_datagram*) { return 0; },
                                          &src),
            VMCI_SUCCESS);
  vmci_datagram dg{};
  dg.dst = sink;
  dg.src = src;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(guest->doorbell_notify(host_bell, 0), VMCI_SUCCESS);
    ASSERT_EQ(host->doorbell_notify(guest_bell, 0), VMCI_SUCCESS);
    ASSERT_EQ(guest->datagram_send(&dg), 24);
  }
  proto::StatsBody stats{};
  ASSERT_EQ(host->hostpeer_stats(&stats), VMCI_SUCCESS);
  ASSERT_GE(stats.ring_channels, 2u);

  EXPECT_EQ(listing("/dev/shm"), shm_before);
  EXPECT_EQ(listing(std::filesystem::path(daemon.socket_path()).parent_path()),
            std::set<std::string>{std::filesystem::path(daemon.socket_path()).filename()});
  // What hostpeer opened for the session (not what it was started with:
  // a test runner may hand it descriptors): files only as unlinked memfds.
  int memfds = 0;
  for (const auto& [fd, target] : file_descriptors(daemon.process().pid())) {
    if (at_start.count(fd) && at_start.at(fd) == target) continue;
    if (target.rfind("/", 0) != 0) continue;  // sockets, pipes, anon inodes
    EXPECT_EQ(target.rfind("/memfd:", 0), 0u) << target;
    EXPECT_NE(target.find("(deleted)"), std::string::npos) << target;
    ++memfds;
  }
  EXPECT_GE(memfds, 4) << "notify memory, pair memory and status, ring channels";
}

TEST(Daemon, HelpExitsZero) {
  ChildProcess help({VMCI_HOSTPEER_BIN, "--help"}, ChildOptions::with_pipes());
  const int status = help.wait(10000);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Daemon, LimitOptionsApply) {
  Daemon daemon({"--max-host-datagram-handles", "1", "--max-pending-datagram-bytes", "100"});
  Peer host, vm;
  ASSERT_EQ(host.call("connect " + daemon.socket_path() + " host"), "0 2");
  ASSERT_EQ(vm.call("connect " + daemon.socket_path() + " guest"), "0 16");
  EXPECT_EQ(host.call("create any"), "0 2:1024");
  EXPECT_EQ(host.call("create any"), "-19 4294967295:4294967295");  // NO_RESOURCES
  ASSERT_EQ(vm.call("hold"), "ok");
  const std::string payload(2 * 56, 'a');  // 80-byte datagrams
  EXPECT_EQ(host.call("send 2:1024 16:1 " + payload), "80");
  EXPECT_EQ(host.call("send 2:1024 16:1 " + payload), "-19") << "80 + 80 reaches 100";
}

TEST(Contexts, GuestProcessesGetIdsFrom16) {
  Daemon daemon;
  Peer a, b;
  EXPECT_EQ(a.call("connect " + daemon.socket_path() + " guest"), "0 16");
  EXPECT_EQ(b.call("connect " + daemon.socket_path() + " guest"), "0 17");
}

TEST(Contexts, RequestedIdIsGrantedWhenFreeAndRefusedWhenTaken) {
  Daemon daemon;
  Peer a, b, c;
  EXPECT_EQ(a.call("connect " + daemon.socket_path() + " guest 77"), "0 77");
  const std::string refused = b.call("connect " + daemon.socket_path() + " guest 77");
  EXPECT_EQ(refused.rfind("-22 ", 0), 0u) << refused;  // VMCI_ERROR_ALREADY_EXISTS
  EXPECT_NE(refused.find("77"), std::string::npos) << "the reason names the id: " << refused;
  EXPECT_EQ(c.call("connect " + daemon.socket_path() + " guest"), "0 16");
}

TEST(Contexts, ReservedIdsCannotBeRequested) {
  Daemon daemon;
  Peer a;
  for (const char* id : {"0", "1", "2"}) {
    const std::string refused = a.call("connect " + daemon.socket_path() + " guest " + id);
    EXPECT_EQ(refused.rfind("-2 ", 0), 0u) << id << ": " << refused;  // INVALID_ARGS
  }
}

TEST(Contexts, HostConnectionsShareContext2) {
  Daemon daemon;
  Peer h1, h2;
  EXPECT_EQ(h1.call("connect " + daemon.socket_path() + " host"), "0 2");
  EXPECT_EQ(h2.call("connect " + daemon.socket_path() + " host"), "0 2");
}

TEST(Contexts, Item32_GetContextIdIsTheHypercallAnswer) {
  Daemon daemon;
  Peer a;
  ASSERT_EQ(a.call("connect " + daemon.socket_path() + " guest 300"), "0 300");
  EXPECT_EQ(a.call("cid"), "300");
}

TEST(Contexts, CallsOnADeadConnectionReturnUnavailableAtOnce) {
  auto daemon = std::make_unique<Daemon>();
  Peer a;
  ASSERT_EQ(a.call("connect " + daemon->socket_path() + " guest"), "0 16");
  ASSERT_EQ(a.call("create any"), "0 16:1024");
  daemon->process().signal(SIGKILL);
  daemon->process().wait(5000);
  // Every call that needs hostpeer fails at once; local calls still work.
  EXPECT_EQ(a.call("send 16:1024 2:4242 00", 2000), "-20");
  EXPECT_EQ(a.call("send 16:1024 2:4242 00", 2000), "-20");
  EXPECT_EQ(a.call("subscribe CTX_REMOVED", 2000), "0 1");
}

}  // namespace
}  // namespace vmci::testing

namespace vmci::testing {
namespace {

// The stats request: a host connection reads what the daemon holds; when a
// guest process dies with a queue pair, a doorbell and a ring channel, the
// holdings return to what they were.
TEST(Daemon, StatsRequestShowsHoldingsReturnToWhatTheyWereAfterAGuestDies) {
  Daemon daemon;
  int status;
  std::string error;
  auto host = guest::Driver::connect(
      {.socket_path = daemon.socket_path(), .role = proto::Role::kHost}, &status, &error);
  ASSERT_TRUE(host) << error;
  proto::StatsBody before{};
  ASSERT_EQ(host->hostpeer_stats(&before), VMCI_SUCCESS);
  EXPECT_EQ(before.host_connections, 1u);
  EXPECT_EQ(before.guest_contexts, 0u);

  vmci_handle bell = VMCI_INVALID_HANDLE;
  ASSERT_EQ(host->doorbell_create(&bell, 0, 0, [] {}), VMCI_SUCCESS);
  Peer guest;
  ASSERT_EQ(guest.call("connect " + daemon.socket_path() + " guest").rfind("0 ", 0), 0u);
  const std::string target = std::to_string(bell.context) + ":" + std::to_string(bell.resource);
  ASSERT_EQ(guest.call("ring-storm 1 3 " + target).rfind("0 ", 0), 0u);
  proto::StatsBody during{};
  ASSERT_EQ(host->hostpeer_stats(&during), VMCI_SUCCESS);
  EXPECT_EQ(during.guest_contexts, 1u);
  EXPECT_EQ(during.doorbells, before.doorbells + 1);
  EXPECT_EQ(during.ring_channels, 1u);
  EXPECT_EQ(during.ring_grants, 1u);

  guest.process().signal(SIGKILL);
  guest.process().wait(10000);
  proto::StatsBody after{};
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(host->hostpeer_stats(&after), VMCI_SUCCESS);
    // (The host's CTX_REMOVED is pending until its driver takes it.)
    if (after.guest_contexts == 0 && after.pending_datagrams == before.pending_datagrams) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(after.guest_contexts, 0u);
  EXPECT_EQ(after.ring_channels, 0u);
  EXPECT_EQ(after.ring_grants, 0u);
  EXPECT_EQ(after.queue_pairs, before.queue_pairs);
  EXPECT_EQ(after.pending_datagrams, before.pending_datagrams);
  EXPECT_EQ(after.doorbells, before.doorbells + 1);  // the host's own
}

TEST(Daemon, StatsAreForHostConnectionsOnly) {
  Daemon daemon;
  int status;
  std::string error;
  auto guest = guest::Driver::connect({.socket_path = daemon.socket_path()}, &status, &error);
  ASSERT_TRUE(guest) << error;
  proto::StatsBody stats{};
  EXPECT_EQ(guest->hostpeer_stats(&stats), VMCI_ERROR_NO_ACCESS);
  EXPECT_EQ(guest->hostpeer_stats(static_cast<proto::StatsBody*>(nullptr)), VMCI_ERROR_INVALID_ARGS);
  EXPECT_EQ(guest->hostpeer_stats(static_cast<Stats*>(nullptr)), VMCI_ERROR_INVALID_ARGS);
}

}  // namespace
}  // namespace vmci::testing
