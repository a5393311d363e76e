// vSockets datagram sockets between a guest Driver and an embedded host.
#include "vmci/vsock/datagram_socket.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "vmci/guest/driver.h"
#include "vmci/host/hostpeer.h"
#include "vmci/vsock/errors.h"
#include "test_world.h"

namespace vmci::vsock {
namespace {

using namespace std::chrono_literals;

class VsockDatagrams : public ::testing::Test {
 protected:
  std::unique_ptr<guest::Driver> connect_guest(uint32_t priv_flags) {
    return world_.connect_guest(priv_flags);
  }

  TestWorld world_;
  Endpoint* host_ = &world_.host();
  std::unique_ptr<guest::Driver> guest_ = world_.connect_guest();
};

TEST_F(VsockDatagrams, ADatagramAndItsAnswerCarryTheirPortsAsResourceIds) {
  std::error_code ec;
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec);
  ASSERT_TRUE(guest) << ec.message();
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  ASSERT_TRUE(host) << ec.message();
  EXPECT_EQ(guest->send_to("ping", 4, {VMCI_HOST_CONTEXT_ID, 4000}, ec), 4u);
  ASSERT_FALSE(ec) << ec.message();
  char buf[16];
  Address from;
  ASSERT_EQ(host->receive_from(buf, sizeof buf, &from, 5s, ec), 4u);
  EXPECT_EQ(std::string(buf, 4), "ping");
  EXPECT_EQ(from, (Address{guest_->get_context_id(), 3000}));
  EXPECT_EQ(host->send_to("pong", 4, from, ec), 4u);
  ASSERT_EQ(guest->receive_from(buf, sizeof buf, &from, 5s, ec), 4u);
  EXPECT_EQ(from, (Address{VMCI_HOST_CONTEXT_ID, 4000}));
}

TEST_F(VsockDatagrams, CloseWakesAWaitingReceiverAfterWhatWasQueued) {
  std::error_code ec;
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  ASSERT_TRUE(host) << ec.message();
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec);
  ASSERT_TRUE(guest) << ec.message();
  guest->send_to("a", 1, {VMCI_HOST_CONTEXT_ID, 4000}, ec);
  char byte;
  ASSERT_EQ(host->receive_from(&byte, 1, nullptr, 5s, ec, nullptr, true), 1u);  // it is there
  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    host->close();
  });
  EXPECT_EQ(host->receive_from(&byte, 1, nullptr, std::nullopt, ec), 1u);  // what was queued
  std::error_code waited;
  EXPECT_EQ(host->receive_from(&byte, 1, nullptr, std::nullopt, waited), 0u);  // woken by close
  EXPECT_EQ(waited, make_error(EBADF));
  closer.join();
  EXPECT_EQ(host->send_to("b", 1, {guest_->get_context_id(), 3000}, ec), 1u);  // sending goes on
}

TEST_F(VsockDatagrams, TheLargestPayloadGoesAndOneByteMoreIsEmsgsize) {
  std::error_code ec;
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, kPortAny}, ec);
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  ASSERT_GE(guest->local_address().port, 1024u);
  std::vector<uint8_t> big(kMaxDatagramPayload + 1, 0x5a);
  EXPECT_EQ(guest->send_to(big.data(), big.size(), {VMCI_HOST_CONTEXT_ID, 4000}, ec), 0u);
  EXPECT_EQ(ec, make_error(EMSGSIZE));
  EXPECT_EQ(guest->send_to(big.data(), kMaxDatagramPayload, {VMCI_HOST_CONTEXT_ID, 4000}, ec),
            kMaxDatagramPayload);
  std::vector<uint8_t> got(kMaxDatagramPayload);
  EXPECT_EQ(host->receive_from(got.data(), got.size(), nullptr, 5s, ec), kMaxDatagramPayload);
  EXPECT_EQ(got, std::vector<uint8_t>(kMaxDatagramPayload, 0x5a));
}

TEST_F(VsockDatagrams, AShortBufferTruncatesAndPeekLeavesTheDatagram) {
  std::error_code ec;
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec);
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  guest->send_to("abcdef", 6, {VMCI_HOST_CONTEXT_ID, 4000}, ec);
  char buf[4];
  bool truncated = false;
  EXPECT_EQ(host->receive_from(buf, 3, nullptr, 5s, ec, &truncated, true), 3u);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(host->next_size(), 6u);
  EXPECT_EQ(host->receive_from(buf, 3, nullptr, 5s, ec, &truncated), 3u);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(host->queued(), 0u);  // one datagram per call: the rest is gone
}

TEST_F(VsockDatagrams, WhatIsRefusedAndWhy) {
  std::error_code ec;
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec);
  EXPECT_FALSE(DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec));
  EXPECT_EQ(ec, make_error(EADDRINUSE));
  EXPECT_FALSE(DatagramSocket::bind(*guest_, {guest_->get_context_id() + 1, 3001}, ec));
  EXPECT_EQ(ec, make_error(EADDRNOTAVAIL));
  struct Case {
    Address to;
    int error;
  } const cases[] = {
      {{VMCI_HYPERVISOR_CONTEXT_ID, 1}, EINVAL},            // only port 14 of the hypervisor
      {{VMCI_HOST_CONTEXT_ID, kPortAny}, EINVAL},
      {{VMCI_HOST_CONTEXT_ID, 4999}, EHOSTUNREACH},         // nobody bound: INVALID_RESOURCE
      {{guest_->get_context_id() + 1, 3000}, EINVAL},       // VM to VM: DST_UNREACHABLE
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(to_string(c.to));
    EXPECT_EQ(guest->send_to("x", 1, c.to, ec), 0u);
    EXPECT_EQ(ec, make_error(c.error));
  }
  EXPECT_EQ(guest->send("x", 1, ec), 0u);  // no default peer
  EXPECT_EQ(ec, make_error(EINVAL));
  char byte;
  EXPECT_EQ(guest->receive_from(&byte, 1, nullptr, 20ms, ec), 0u);
  EXPECT_EQ(ec, make_error(EAGAIN));
}

TEST_F(VsockDatagrams, ARestrictedGuestCannotReachAnUntrustedHostSocket) {
  auto restricted = connect_guest(VMCI_PRIVILEGE_FLAG_RESTRICTED);
  std::error_code ec;
  auto guest = DatagramSocket::bind(*restricted, {kCidAny, 3000}, ec);
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec);
  EXPECT_EQ(guest->send_to("x", 1, {VMCI_HOST_CONTEXT_ID, 4000}, ec), 0u);
  EXPECT_EQ(ec, make_error(EPERM));
}

TEST_F(VsockDatagrams, AFullReceiveQueueDropsAndCountsWhatItCannotKeep) {
  std::error_code ec;
  auto guest = DatagramSocket::bind(*guest_, {kCidAny, 3000}, ec);
  auto host = DatagramSocket::bind(*host_, {kCidAny, 4000}, ec, 100);
  guest->connect({VMCI_HOST_CONTEXT_ID, 4000});
  std::vector<uint8_t> forty(40, 1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(guest->send(forty.data(), forty.size(), ec), 40u);
  for (int i = 0; i < 200 && host->queued() + host->dropped() < 5; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(host->queued(), 2u);
  EXPECT_EQ(host->dropped(), 3u);
}

}  // namespace
}  // namespace vmci::vsock
