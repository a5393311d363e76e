// metrics_server_test.cc: the metrics server over real TCP sockets on
// loopback: what it answers to a scrape, another path, another method,
// garbage and an oversized request; that silent clients neither hold it
// nor stop the next scrape; and what it says of addresses it cannot use.
#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include "quiet_logger.h"

namespace vmci::host {
namespace {

uint16_t port_of(const std::string& address) {
  return static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

// A TCP client of 127.0.0.1:port whose reads give up after 5 s.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Everything until the server closes (or 5 s pass: then with "TIMEOUT").
  std::string read_all() {
    std::string out;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return out + "TIMEOUT";
      if (n <= 0) return out;
      out.append(buffer, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string exchange(uint16_t port, const std::string& request) {
  Client client(port);
  if (!client.connected() || !client.send(request)) return "NOT CONNECTED";
  return client.read_all();
}

const std::string kScrape = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

class MetricsServerTest : public ::testing::Test {
 protected:
  void start(MetricsServerLimits limits = {}) {
    std::string error;
    server = MetricsServer::start(
        "127.0.0.1:0", [this] { return "scrape_number " + std::to_string(++renders) + "\n"; },
        limits, test_support::quiet_logger(), &error);
    ASSERT_TRUE(server) << error;
    port = port_of(server->address());
  }
  std::atomic<int> renders{0};
  std::unique_ptr<MetricsServer> server;
  uint16_t port = 0;
};

TEST_F(MetricsServerTest, AScrapeRendersOnceAndAnswersInTheTextFormat) {
  start();
  EXPECT_EQ(server->address().rfind("127.0.0.1:", 0), 0u);
  const std::string answer = exchange(port, kScrape);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(answer.find("\r\n\r\nscrape_number 1\n"), std::string::npos) << answer;
  EXPECT_NE(exchange(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").find("scrape_number 2\n"), std::string::npos);
  EXPECT_EQ(renders, 2);
}

TEST_F(MetricsServerTest, KeepAliveServesOneScrapeAfterAnother) {
  start();
  Client client(port);
  ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + kScrape));
  const std::string both = client.read_all();
  EXPECT_NE(both.find("scrape_number 1\n"), std::string::npos) << both;
  EXPECT_NE(both.find("scrape_number 2\n"), std::string::npos) << both;
}

TEST_F(MetricsServerTest, AnotherPathIs404AndAnotherMethod405) {
  start();
  EXPECT_EQ(exchange(port, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(exchange(port, "GET /metricsx HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  const std::string post = exchange(port, "POST /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(exchange(port, "DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(renders, 0);
}

TEST_F(MetricsServerTest, GarbageAndOversizedRequestsAreRefusedAndClosed) {
  MetricsServerLimits limits;
  limits.max_request_bytes = 1024;
  start(limits);
  struct Case {
    const char* what;
    std::string request;
    const char* status;
  };
  const Case kCases[] = {
      {"not HTTP", std::string("\x01\x02\x03 garbage\r\n\r\n"), "HTTP/1.1 400"},
      {"a bad request line", "GET\r\n\r\n", "HTTP/1.1 400"},
      {"headers past the limit", "GET /metrics HTTP/1.1\r\nX: " + std::string(4096, 'a') + "\r\n\r\n",
       "HTTP/1.1 431"},
      {"a body", "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 413"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.what);
    const std::string answer = exchange(port, c.request);
    EXPECT_EQ(answer.rfind(c.status, 0), 0u) << answer;
    EXPECT_EQ(answer.find("TIMEOUT"), std::string::npos);  // and closed
  }
  EXPECT_NE(exchange(port, kScrape).find("scrape_number 1\n"), std::string::npos);
}

TEST_F(MetricsServerTest, ASilentClientIsClosedAfterTheTimeoutAndDoesNotStopAScrape) {
  MetricsServerLimits limits;
  limits.read_timeout = std::chrono::milliseconds(300);
  start(limits);
  Client silent(port), half(port);
  ASSERT_TRUE(silent.connected());
  ASSERT_TRUE(half.send("GET /metr"));
  const auto before = std::chrono::steady_clock::now();
  EXPECT_NE(exchange(port, kScrape).find("scrape_number 1\n"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(250));
  EXPECT_EQ(silent.read_all(), "");  // closed by the server, well before the client's 5 s
  EXPECT_EQ(half.read_all(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(2));
}

TEST_F(MetricsServerTest, ClientsPastTheLimitAreClosedAtOnce) {
  MetricsServerLimits limits;
  limits.max_connections = 2;
  limits.read_timeout = std::chrono::milliseconds(2000);
  start(limits);
  Client a(port), b(port);
  ASSERT_TRUE(a.send("G"));
  ASSERT_TRUE(b.send("G"));
  Client c(port);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(c.read_all(), "");
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(1500));
}

TEST(MetricsServer, APortInUseOrABadAddressIsAnErrorThatSaysSo) {
  std::string error;
  auto first = MetricsServer::start(
      "127.0.0.1:0", [] { return std::string(); }, {}, test_support::quiet_logger(), &error);
  ASSERT_TRUE(first) << error;
  auto second = MetricsServer::start(
      first->address(), [] { return std::string(); }, {}, test_support::quiet_logger(), &error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  EXPECT_FALSE(MetricsServer::start(
      "192.0.2.1:0", [] { return std::string(); }, {}, test_support::quiet_logger(), &error));
  EXPECT_NE(error.find("cannot listen on 192.0.2.1:0"), std::string::npos) << error;
  EXPECT_FALSE(MetricsServer::start(
      "nowhere", [] { return std::string(); }, {}, test_support::quiet_logger(), &error));
  EXPECT_NE(error.find("no port"), std::string::npos) << error;
}

TEST(ListenAddress, ParsesWhatTheUserWritesAndSaysWhatIsWrong) {
  struct Case {
    const char* text;
    const char* host;  // null: refused, with `why` in the error
    uint16_t port;
    const char* why;
  };
  static constexpr Case kCases[] = {
      {"127.0.0.1:9464", "127.0.0.1", 9464, nullptr},
      {"0.0.0.0:0", "0.0.0.0", 0, nullptr},
      {"localhost:80", "127.0.0.1", 80, nullptr},
      {"[::1]:9464", "::1", 9464, nullptr},
      {"127.0.0.1", nullptr, 0, "no port"},
      {"9464", nullptr, 0, "no port"},
      {"127.0.0.1:65536", nullptr, 0, "the port is not a number"},
      {"127.0.0.1:94x", nullptr, 0, "the port is not a number"},
      {"127.0.0.1:", nullptr, 0, "the port is not a number"},
      {"example.org:9464", nullptr, 0, "is not an IPv4 address"},
      {"::1:9464", nullptr, 0, "in brackets"},
      {"[nope]:9464", nullptr, 0, "is not an IPv6 address"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.text);
    std::string error;
    const auto address = parse_listen_address(c.text, &error);
    if (c.host) {
      ASSERT_TRUE(address) << error;
      EXPECT_EQ(address->host, c.host);
      EXPECT_EQ(address->port, c.port);
    } else {
      EXPECT_FALSE(address);
      EXPECT_NE(error.find(c.why), std::string::npos) << error;
      EXPECT_NE(error.find("expected ADDR:PORT"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace vmci::host
