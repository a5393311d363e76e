// vSockets streams between a guest (a guest Driver over hostpeer's socket)
// and a host (an endpoint embedded in hostpeer): real endpoints, real queue
// pairs, real control packets.
#include "vmci/vsock/transport.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/vsock/errors.h"
#include "test_world.h"

namespace vmci::vsock {
namespace {

using namespace std::chrono_literals;

// Collects what a transport logs.
struct LogLines {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(mutex);
      lines.push_back(line);
    };
  }
  size_t count() {
    std::lock_guard lock(mutex);
    return lines.size();
  }
};

class Vsock : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = &world_.host();
    guest_ = world_.connect_guest();
    std::error_code ec;
    host_vsock_ = Transport::open(*host_, options_for(&host_log_), ec);
    ASSERT_TRUE(host_vsock_) << ec.message();
    guest_vsock_ = Transport::open(*guest_, options_for(&guest_log_), ec);
    ASSERT_TRUE(guest_vsock_) << ec.message();
  }
  void TearDown() override {
    guest_vsock_.reset();
    host_vsock_.reset();
    guest_.reset();
  }
  std::unique_ptr<guest::Driver> connect_guest(uint32_t priv_flags = 0) {
    return world_.connect_guest(priv_flags);
  }
  static TransportOptions options_for(LogLines* log) {
    TransportOptions options;
    options.log = log->sink();
    return options;
  }
  vmci_id guest_cid() { return guest_->get_context_id(); }

  // A connected pair: the guest connects to the host's `port`.
  std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> guest_to_host(uint32_t port) {
    std::error_code ec;
    auto listener = host_vsock_->listen(port, 4, ec);
    EXPECT_FALSE(ec) << ec.message();
    auto client = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, port}, ec);
    EXPECT_FALSE(ec) << ec.message();
    auto server = listener->accept(5s, ec);
    EXPECT_FALSE(ec) << ec.message();
    return {std::move(client), std::move(server)};
  }

  TestWorld world_;
  Endpoint* host_ = nullptr;
  std::unique_ptr<guest::Driver> guest_;
  LogLines host_log_, guest_log_;
  std::shared_ptr<Transport> host_vsock_, guest_vsock_;
};

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 11));
  return bytes;
}

std::vector<uint8_t> read_exactly(Stream& s, size_t size) {
  std::vector<uint8_t> got(size);
  size_t done = 0;
  std::error_code ec;
  while (done < size) {
    const size_t n = s.read_some(got.data() + done, size - done, 10s, ec);
    if (ec || n == 0) break;
    done += n;
  }
  got.resize(done);
  return got;
}

TEST_F(Vsock, AGuestConnectsToTheHostAndMegabytesFlowBothWaysIntact) {
  auto [client, server] = guest_to_host(1234);
  ASSERT_TRUE(client && server);
  EXPECT_EQ(server->remote_address(), (Address{guest_cid(), client->local_address().port}));
  EXPECT_EQ(client->remote_address(), (Address{VMCI_HOST_CONTEXT_ID, 1234}));
  // More than the 256 KiB queues, so each writer blocks and is woken by READ.
  const auto up = pattern(3 << 20, 1), down = pattern(3 << 20, 2);
  std::error_code up_ec, down_ec;
  std::thread writer([&] { client->write_all(up.data(), up.size(), up_ec); });
  std::thread back([&] { server->write_all(down.data(), down.size(), down_ec); });
  EXPECT_EQ(read_exactly(*server, up.size()), up);
  EXPECT_EQ(read_exactly(*client, down.size()), down);
  writer.join();
  back.join();
  EXPECT_FALSE(up_ec) << up_ec.message();
  EXPECT_FALSE(down_ec) << down_ec.message();
  EXPECT_EQ(host_log_.count() + guest_log_.count(), 0u);
}

TEST_F(Vsock, TheHostConnectsToAGuestListener) {
  std::error_code ec;
  auto listener = guest_vsock_->listen(5000, 1, ec);
  ASSERT_TRUE(listener) << ec.message();
  auto client = host_vsock_->connect({guest_cid(), 5000}, ec);
  ASSERT_TRUE(client) << ec.message();
  auto server = listener->accept(5s, ec);
  ASSERT_TRUE(server) << ec.message();
  const std::string hello = "hello, guest";
  ASSERT_EQ(client->write_all(hello.data(), hello.size(), ec), hello.size());
  const auto got = read_exactly(*server, hello.size());
  EXPECT_EQ(std::string(got.begin(), got.end()), hello);
}

TEST_F(Vsock, AReaderSleepsUntilTheWriterWritesAndNothingPolls) {
  auto [client, server] = guest_to_host(1234);
  std::atomic<bool> read{false};
  std::thread reader([&, s = server.get()] {
    uint8_t byte = 0;
    std::error_code ec;
    EXPECT_EQ(s->read_some(&byte, 1, std::nullopt, ec), 1u);
    EXPECT_EQ(byte, 42);
    read = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(read);
  const uint8_t byte = 42;
  std::error_code ec;
  client->write_all(&byte, 1, ec);
  reader.join();
  EXPECT_TRUE(read);
}

TEST_F(Vsock, AConnectToAPortNobodyListensOnIsReset) {
  std::error_code ec;
  EXPECT_FALSE(guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 4321}, ec));
  EXPECT_EQ(ec, make_error(ECONNRESET));
  EXPECT_FALSE(host_vsock_->connect({guest_cid(), 4321}, ec));
  EXPECT_EQ(ec, make_error(ECONNRESET));
  // The same socket's port connects once someone listens (vsock_test 30).
  auto listener = host_vsock_->listen(4321, 1, ec);
  EXPECT_TRUE(guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 4321}, ec, std::nullopt, 7777));
  EXPECT_FALSE(ec) << ec.message();
}

TEST_F(Vsock, AConnectToAContextWithoutVsockTimesOut) {
  auto other = connect_guest();  // a guest that never opened vSockets
  std::error_code ec;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(host_vsock_->connect({other->get_context_id(), 1}, ec, 200ms));
  EXPECT_EQ(ec, make_error(ETIMEDOUT));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_EQ(host_vsock_->connection_count(), 0u);
}

TEST_F(Vsock, ContextOneIsUnreachable) {
  std::error_code ec;
  EXPECT_FALSE(guest_vsock_->connect({1, 1234}, ec));
  EXPECT_EQ(ec, make_error(ENETUNREACH));
}

TEST_F(Vsock, AFullBacklogResetsTheNextConnect) {
  std::error_code ec;
  auto listener = host_vsock_->listen(1234, 1, ec);
  auto first = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  ASSERT_TRUE(first) << ec.message();
  EXPECT_FALSE(guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec));
  EXPECT_EQ(ec, make_error(ECONNRESET));
  EXPECT_TRUE(listener->accept(0ms, ec));
  EXPECT_TRUE(guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec)) << ec.message();
}

TEST_F(Vsock, APortIsTakenOnce) {
  std::error_code ec;
  auto a = host_vsock_->listen(1234, 1, ec);
  EXPECT_FALSE(host_vsock_->listen(1234, 1, ec));
  EXPECT_EQ(ec, make_error(EADDRINUSE));
  a.reset();
  EXPECT_TRUE(host_vsock_->listen(1234, 1, ec));
}

TEST_F(Vsock, AWaitForThePeersShutdownEndsWhenItComesOrTheTimeoutPasses) {
  auto [client, server] = guest_to_host(1234);
  EXPECT_EQ(server->wait_for_peer_shutdown(kReceiveShutdown, 50ms), 0u);  // the timeout
  std::thread shutter([c = client.get()] {
    std::this_thread::sleep_for(50ms);
    c->shutdown(kSendShutdown);
    std::this_thread::sleep_for(50ms);
    c->close();  // the peer leaves: all bits
  });
  EXPECT_EQ(server->wait_for_peer_shutdown(kReceiveShutdown, std::nullopt), kShutdownMask);
  shutter.join();
}

TEST_F(Vsock, HalfCloseEndsOneDirectionOnly) {
  auto [client, server] = guest_to_host(1234);
  const std::string last = "last words";
  std::error_code ec;
  client->write_all(last.data(), last.size(), ec);
  EXPECT_FALSE(client->shutdown(kSendShutdown));
  const auto got = read_exactly(*server, last.size());
  EXPECT_EQ(std::string(got.begin(), got.end()), last);
  uint8_t byte;
  EXPECT_EQ(server->read_some(&byte, 1, 5s, ec), 0u);  // end of stream
  EXPECT_FALSE(ec);
  EXPECT_EQ(client->write_some("x", 1, 0ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EPIPE));
  // The other direction still works.
  server->write_all("back", 4, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(read_exactly(*client, 4).size(), 4u);
}

TEST_F(Vsock, AfterThePeerShutsDownReceivingAWriteIsEpipe) {
  auto [client, server] = guest_to_host(1234);
  EXPECT_FALSE(server->shutdown(kReceiveShutdown));
  std::error_code ec;
  for (int i = 0; i < 100 && client->peer_shutdown() == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(client->write_some("x", 1, 0ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EPIPE));
  EXPECT_EQ(server->shutdown(7), make_error(EINVAL));
}

TEST_F(Vsock, ThePeersCloseIsTheEndOfTheStreamAndItsLastBytesStayReadable) {
  // Host client, guest server: the guest keeps the pair's memory after the
  // host detaches, so it reads what was left (vsock_test 2 and 3).
  std::error_code ec;
  auto listener = guest_vsock_->listen(5000, 1, ec);
  auto client = host_vsock_->connect({guest_cid(), 5000}, ec);
  ASSERT_TRUE(client) << ec.message();
  auto server = listener->accept(5s, ec);
  ASSERT_TRUE(server);
  client->write_all("z", 1, ec);
  client->close();
  for (int i = 0; i < 200 && server->peer_shutdown() != kShutdownMask; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server->peer_shutdown(), kShutdownMask);
  uint8_t byte = 0;
  EXPECT_EQ(server->read_some(&byte, 1, 5s, ec), 1u);
  EXPECT_EQ(byte, 'z');
  EXPECT_EQ(server->read_some(&byte, 1, 5s, ec), 0u);
  EXPECT_FALSE(ec);
  EXPECT_EQ(server->write_some("y", 1, 0ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EPIPE));
  // Its port answers RST from now on.
  EXPECT_EQ(host_vsock_->connection_count(), 0u);
}

TEST_F(Vsock, AGuestThatGoesIsTheEndOfItsHostConnections) {
  auto [client, server] = guest_to_host(1234);
  client.reset();
  guest_vsock_.reset();
  guest_.reset();  // the guest context goes: its pair detaches
  uint8_t byte;
  std::error_code ec;
  EXPECT_EQ(server->read_some(&byte, 1, 5s, ec), 0u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(server->write_some("x", 1, 0ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EPIPE));
}

TEST_F(Vsock, ThirtyTwoConnectionsAtOnce) {
  std::error_code ec;
  auto listener = host_vsock_->listen(1234, 32, ec);
  std::vector<std::unique_ptr<Stream>> clients, servers;
  for (int i = 0; i < 32; ++i) {
    clients.push_back(guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec));
    ASSERT_TRUE(clients.back()) << i << ": " << ec.message();
    servers.push_back(listener->accept(5s, ec));
    ASSERT_TRUE(servers.back()) << ec.message();
  }
  for (int i = 0; i < 32; ++i) {
    const uint8_t b = static_cast<uint8_t>(i);
    clients[i]->write_all(&b, 1, ec);
  }
  for (int i = 0; i < 32; ++i) {
    const auto got = read_exactly(*servers[i], 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], i);
  }
}

TEST_F(Vsock, AServerThatWritesAsSoonAsItAcceptsNeverBreaksTheClientsHandshake) {
  // The ATTACH goes before the connection can be accepted: a WROTE of the
  // server's first write cannot overtake it (a client in its handshake
  // takes no WROTE: EPROTO).
  std::error_code ec;
  auto listener = host_vsock_->listen(1234, 4, ec);
  constexpr int kConnections = 200;
  std::thread server([&] {
    for (int i = 0; i < kConnections; ++i) {
      std::error_code server_ec;
      auto s = listener->accept(5s, server_ec);
      ASSERT_TRUE(s) << server_ec.message();
      s->write_all("!", 1, server_ec);
    }
  });
  for (int i = 0; i < kConnections; ++i) {
    auto c = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
    ASSERT_TRUE(c) << i << ": " << ec.message();
    EXPECT_EQ(read_exactly(*c, 1).size(), 1u);
  }
  server.join();
}

TEST_F(Vsock, AReadOrWriteTimesOutWithEagain) {
  auto [client, server] = guest_to_host(1234);
  uint8_t byte;
  std::error_code ec;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server->read_some(&byte, 1, 100ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EAGAIN));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  const auto fill = pattern(client->writable(), 3);
  EXPECT_EQ(client->write_all(fill.data(), fill.size(), ec), fill.size());
  EXPECT_EQ(client->write_some("x", 1, 50ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EAGAIN));
}

TEST_F(Vsock, PeekLeavesTheBytes) {
  auto [client, server] = guest_to_host(1234);
  std::error_code ec;
  client->write_all("abc", 3, ec);
  char buf[3] = {};
  EXPECT_EQ(server->read_some(buf, 2, 5s, ec, true), 2u);
  EXPECT_EQ(std::string(buf, 2), "ab");
  EXPECT_EQ(read_exactly(*server, 3).size(), 3u);
}

TEST_F(Vsock, TheServerPicksTheQueueSizeWithinItsBoundsAndTheClientChecksItsOwn) {
  // A server whose sizes are at most 64 KiB answers a 256 KiB request with
  // its own size.
  host_vsock_.reset();
  TransportOptions small;
  small.buffer_size = small.buffer_max_size = 65536;
  std::error_code ec;
  host_vsock_ = Transport::open(*host_, small, ec);
  auto listener = host_vsock_->listen(1234, 2, ec);
  auto client = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  ASSERT_TRUE(client) << ec.message();
  EXPECT_EQ(client->writable(), 65535u);  // a queue of N bytes holds N - 1
  // A client that will not take less than 128 KiB refuses it: EINVAL. (A
  // guest of its own: the first guest's transport may still be going away
  // on a delivery thread, holding resource 1, when a new one would open.)
  auto other = connect_guest();
  TransportOptions picky;
  picky.buffer_min_size = 131072;
  picky.log = guest_log_.sink();
  auto picky_vsock = Transport::open(*other, picky, ec);
  ASSERT_TRUE(picky_vsock) << ec.message();
  EXPECT_FALSE(picky_vsock->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec));
  EXPECT_EQ(ec, make_error(EINVAL));
  picky_vsock.reset();
}

TEST_F(Vsock, ARestrictedGuestReachesOnlyATrustedHost) {
  auto restricted = connect_guest(VMCI_PRIVILEGE_FLAG_RESTRICTED);
  std::error_code ec;
  auto vsock = Transport::open(*restricted, options_for(&guest_log_), ec);
  auto listener = host_vsock_->listen(1234, 1, ec);
  EXPECT_FALSE(vsock->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec));
  EXPECT_EQ(ec, make_error(EPERM));  // VMCI refuses its REQUEST2
  listener.reset();
  host_vsock_.reset();
  TransportOptions trusted = options_for(&host_log_);
  trusted.trusted = true;
  host_vsock_ = Transport::open(*host_, trusted, ec);
  listener = host_vsock_->listen(1234, 1, ec);
  auto client = vsock->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  ASSERT_TRUE(client) << ec.message();
  auto server = listener->accept(5s, ec);
  ASSERT_TRUE(server);
  client->write_all("r", 1, ec);
  EXPECT_EQ(read_exactly(*server, 1).size(), 1u);
  server->write_all("t", 1, ec);
  EXPECT_EQ(read_exactly(*client, 1).size(), 1u);
}

TEST_F(Vsock, AReaderWakesAWaitingWriterOnlyOnceAPageIsFree) {
  auto [client, server] = guest_to_host(1234);
  std::error_code ec;
  const auto fill = pattern(client->writable(), 9);
  ASSERT_EQ(client->write_all(fill.data(), fill.size(), ec), fill.size());
  std::error_code writer_ec;  // the writer's own: ec is the reader's
  // The writer waits for room.
  std::thread writer([&, c = client.get()] { c->write_all("more", 4, writer_ec); });
  std::this_thread::sleep_for(50ms);
  const uint64_t reads_before = host_vsock_->packets_sent(PacketType::kRead);
  std::vector<uint8_t> got;
  for (int i = 0; i < 1000; ++i) {  // a byte at a time: no READ for each
    uint8_t byte;
    ASSERT_EQ(server->read_some(&byte, 1, 5s, ec), 1u);
    got.push_back(byte);
  }
  EXPECT_EQ(host_vsock_->packets_sent(PacketType::kRead), reads_before);
  const auto rest = read_exactly(*server, 8192);  // past a page: the writer is told
  writer.join();
  EXPECT_GE(host_vsock_->packets_sent(PacketType::kRead), reads_before + 1);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), fill.begin()));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(writer_ec) << writer_ec.message();
}

// Packets fed straight to the transport's receive callback.
class VsockPackets : public Vsock {
 protected:
  // A packet as routing delivers it: from `src_cid`'s resource 1.
  static std::vector<uint8_t> from(vmci_id src_cid, PacketType type, uint32_t src_port,
                                   uint32_t dst_port, uint64_t u = 0, uint16_t proto = 0) {
    auto bytes = encode(type, VMCI_HOST_CONTEXT_ID, src_port, dst_port, u, proto);
    std::memcpy(bytes.data() + 8, &src_cid, sizeof src_cid);
    return bytes;
  }
  int feed(const std::vector<uint8_t>& bytes) {
    return host_vsock_->receive(reinterpret_cast<const vmci_datagram*>(bytes.data()));
  }
};

TEST_F(VsockPackets, MalformedForgedAndOutOfTurnPacketsAreLoggedAndChangeNothing) {
  auto [client, server] = guest_to_host(1234);
  const vmci_id cid = guest_cid();
  const uint32_t port = client->local_address().port;
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
  };
  auto short_one = from(cid, PacketType::kRst, port, 1234);
  short_one[16] = 16;  // a datagram of 40 bytes
  short_one.resize(40);
  auto wrong_resource = from(cid, PacketType::kRst, port, 1234);
  wrong_resource[12] = 2;
  auto from_local = from(1, PacketType::kRst, port, 1234);
  const Case cases[] = {
      {"shorter than a packet", short_one},
      {"from resource 2", wrong_resource},
      {"from context 1", from_local},
      {"a REQUEST2 on an established connection", from(cid, PacketType::kRequest2, port, 1234,
                                                        4096, kProtoQueueState)},
      {"an OFFER on an established connection",
       from(cid, PacketType::kOffer, port, 1234, handle_word(VMCI_MAKE_HANDLE(cid, 9)))},
      {"an unknown type", [&] {
         auto b = from(cid, PacketType::kWrote, port, 1234);
         b[25] = 200;
         return b;
       }()},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const size_t before = host_log_.count();
    feed(c.bytes);
    EXPECT_EQ(host_log_.count(), before + 1);
  }
  // The connection goes on as if nothing had come.
  std::error_code ec;
  client->write_all("ok", 2, ec);
  EXPECT_EQ(read_exactly(*server, 2).size(), 2u);
  server->write_all("ok", 2, ec);
  EXPECT_EQ(read_exactly(*client, 2).size(), 2u);
  EXPECT_EQ(server->peer_shutdown(), 0u);
}

TEST_F(VsockPackets, AFloodOfBadPacketsIsLoggedABurstAtATime) {
  auto bytes = from(guest_cid(), PacketType::kRst, 1, 2);
  bytes[12] = 2;
  for (int i = 0; i < 100000; ++i) feed(bytes);
  EXPECT_LE(host_log_.count(), 11u);
}

TEST_F(VsockPackets, AResetEndsAnEstablishedConnectionAsAFullShutdown) {
  auto [client, server] = guest_to_host(1234);
  std::error_code ec;
  client->write_all("abc", 3, ec);
  for (int i = 0; i < 200 && server->readable() < 3; ++i) std::this_thread::sleep_for(5ms);
  feed(from(guest_cid(), PacketType::kRst, client->local_address().port, 1234));
  EXPECT_EQ(server->peer_shutdown(), kShutdownMask);
  EXPECT_EQ(read_exactly(*server, 3).size(), 3u);  // what was queued is still read
  uint8_t byte;
  EXPECT_EQ(server->read_some(&byte, 1, 0ms, ec), 0u);
  EXPECT_FALSE(ec);
}

TEST_F(VsockPackets, AListenerRefusesWhatIsNotAConnectRequest) {
  std::error_code ec;
  auto listener = host_vsock_->listen(1234, 4, ec);
  const vmci_id cid = guest_cid();
  feed(from(cid, PacketType::kOffer, 1500, 1234, handle_word(VMCI_MAKE_HANDLE(cid, 9))));
  feed(from(cid, PacketType::kRequest2, 1501, 1234, 0, kProtoQueueState));  // size 0
  feed(from(cid, PacketType::kRequest2, 1502, 1234, 4096, 0));  // no common protocol
  feed(from(cid, PacketType::kRequest, 1503, 1234, 4096));       // the old protocol
  EXPECT_EQ(host_vsock_->connection_count(), 0u);
  EXPECT_EQ(listener->ready(), 0u);
}

TEST_F(VsockPackets, AChildThatNeverOffersIsDroppedAfterItsTimeout) {
  host_vsock_.reset();
  TransportOptions options;
  options.log = host_log_.sink();
  options.pending_timeout = 300ms;
  std::error_code ec;
  host_vsock_ = Transport::open(*host_, options, ec);
  auto listener = host_vsock_->listen(1234, 1, ec);
  // A silent guest: its resource 1 swallows the NEGOTIATE2 (a guest's
  // transport would answer a connection it does not know with RST).
  auto silent = connect_guest();
  vmci_handle swallower;
  ASSERT_EQ(silent->datagram_create_handle(
                1, 0, 0, [](vmci_datagram*) { return VMCI_SUCCESS; }, &swallower),
            VMCI_SUCCESS);
  // A REQUEST2 whose client never goes on: the child holds the backlog...
  const auto fed_at = std::chrono::steady_clock::now();
  feed(from(silent->get_context_id(), PacketType::kRequest2, 1500, 1234, 4096,
            kProtoQueueState));
  const size_t count_after_feed = host_vsock_->connection_count();
  if (std::chrono::steady_clock::now() - fed_at < options.pending_timeout) {
    EXPECT_EQ(count_after_feed, 1u);  // (a loaded machine may take longer than the timeout)
  }
  // ...until its time is up: the next request drops it, and gets in.
  std::this_thread::sleep_until(fed_at + options.pending_timeout + 50ms);
  auto client = guest_vsock_->connect({VMCI_HOST_CONTEXT_ID, 1234}, ec);
  EXPECT_TRUE(client) << ec.message();
  auto server = listener->accept(5s, ec);
  EXPECT_TRUE(server) << ec.message();
  EXPECT_EQ(host_vsock_->connection_count(), 1u);  // the accepted one only
  silent->datagram_destroy_handle(swallower);
}

}  // namespace
}  // namespace vmci::vsock
