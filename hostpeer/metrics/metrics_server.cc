#include "metrics/metrics_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <thread>

// clang-format off
#include "server/asio.h"
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

#include "metrics/metrics_text.h"

namespace vmci::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error) {
  const auto fail = [&](const std::string& why) -> std::optional<ListenAddress> {
    *error = "metrics address \"" + std::string(text) + "\": " + why +
             " (expected ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)";
    return std::nullopt;
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return fail("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  ListenAddress out;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), out.port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size())
    return fail("the port is not a number from 0 to 65535");
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    boost::system::error_code bad;
    asio::ip::make_address_v6(std::string(host), bad);
    if (bad) return fail("\"" + std::string(host) + "\" is not an IPv6 address");
  } else if (host == "localhost") {
    host = "127.0.0.1";
  } else {
    boost::system::error_code bad;
    asio::ip::make_address_v4(std::string(host), bad);
    if (bad) {
      return fail(host.find(':') != std::string_view::npos
                      ? "an IPv6 address goes in brackets"
                      : "\"" + std::string(host) + "\" is not an IPv4 address");
    }
  }
  out.host = std::string(host);
  return out;
}

namespace {

// What the sessions share with the server; it outlives every session
// (each holds it), whatever order the io_context destroys them in.
struct Shared {
  MetricsServer::Render render;
  MetricsServerLimits limits;
  std::shared_ptr<spdlog::logger> log;
  uint32_t connections = 0;  // touched on the server's thread only
};

// One client connection: reads requests one after the other (keep-alive),
// answers each, and ends at the first error, timeout or close.
class ScrapeConnection : public std::enable_shared_from_this<ScrapeConnection> {
 public:
  ScrapeConnection(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)),
        shared_(std::move(shared)),
        buffer_(shared_->limits.max_request_bytes) {
    ++shared_->connections;
  }
  ~ScrapeConnection() { --shared_->connections; }

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(shared_->limits.max_request_bytes);
    parser_->body_limit(0);
    stream_.expires_after(shared_->limits.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    if (ec) {
      // Not HTTP, or too long: answer once and close.
      const http::status status =
          ec == http::error::header_limit || ec == http::error::buffer_overflow
              ? http::status::request_header_fields_too_large
          : ec == http::error::body_limit || ec == http::error::unexpected_body
              ? http::status::payload_too_large
              : http::status::bad_request;
      shared_->log->debug("metrics: a request from {} refused: {}", peer(), ec.message());
      return answer(status, 11, false, "text/plain", std::string(http::obsolete_reason(status)) + "\n");
    }
    const auto& request = parser_->get();
    const bool keep_alive = request.keep_alive();
    std::string_view target(request.target().data(), request.target().size());
    target = target.substr(0, target.find('?'));
    if (request.method() != http::verb::get) {
      return answer(http::status::method_not_allowed, request.version(), keep_alive, "text/plain",
                    "only GET is served here\n");
    }
    if (target != "/metrics") {
      return answer(http::status::not_found, request.version(), keep_alive, "text/plain",
                    "not found: the metrics are at /metrics\n");
    }
    std::string body;
    try {
      body = shared_->render();
    } catch (const std::exception& e) {
      shared_->log->error("metrics: cannot render the metrics: {}", e.what());
      return answer(http::status::internal_server_error, request.version(), false, "text/plain",
                    "the metrics could not be rendered\n");
    }
    answer(http::status::ok, request.version(), keep_alive, std::string(kMetricsContentType),
           std::move(body));
  }

  void answer(http::status status, unsigned version, bool keep_alive, std::string content_type,
              std::string body) {
    auto response = std::make_shared<http::response<http::string_body>>(status, version);
    response->set(http::field::server, "vmci-hostpeer");
    response->set(http::field::content_type, content_type);
    if (status == http::status::method_not_allowed) response->set(http::field::allow, "GET");
    response->keep_alive(keep_alive);
    response->body() = std::move(body);
    response->prepare_payload();
    stream_.expires_after(shared_->limits.read_timeout);
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response, keep_alive](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (!keep_alive) return self->linger_close();
                        self->read();
                      });
  }

  // Closing with unread bytes would reset the connection, and the client
  // could lose the answer: say the end, then read and drop what the
  // client still sends (within the timeout and a bound) before closing.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(shared_->limits.read_timeout);
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kMaxDrained) return self->close();
                              self->drain();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  std::string peer() const {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    return ec ? std::string("a client") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  static constexpr size_t kMaxDrained = 64 * 1024;
  std::array<char, 4096> discard_{};
  size_t drained_ = 0;
};

}  // namespace

struct MetricsServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  asio::steady_timer retry{io};
  std::shared_ptr<Shared> shared;
  std::string address;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors, say: try again in a while rather than spin.
        shared->log->warn("metrics: accept failed: {}", ec.message());
        retry.expires_after(std::chrono::milliseconds(100));
        retry.async_wait([this](beast::error_code e) {
          if (!e) accept();
        });
        return;
      }
      if (shared->connections >= shared->limits.max_connections) {
        shared->log->debug("metrics: {} connections open, one more closed", shared->connections);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<ScrapeConnection>(std::move(socket), shared)->start();
      }
      accept();
    });
  }
};

MetricsServer::MetricsServer() = default;

std::unique_ptr<MetricsServer> MetricsServer::start(std::string_view address, Render render,
                                                    MetricsServerLimits limits,
                                                    std::shared_ptr<spdlog::logger> log,
                                                    std::string* error) {
  const auto where = parse_listen_address(address, error);
  if (!where) return nullptr;
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->impl_ = std::make_unique<Impl>();
  Impl& impl = *server->impl_;
  impl.shared = std::make_shared<Shared>(Shared{std::move(render), limits, std::move(log), 0});
  const tcp::endpoint endpoint(asio::ip::make_address(where->host), where->port);
  beast::error_code ec;
  impl.acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl.acceptor.bind(endpoint, ec);
  if (!ec) impl.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "metrics: cannot listen on " + std::string(address) + ": " + ec.message() +
             (ec == asio::error::address_in_use ? " (another program has that port; pick another)"
                                                : "");
    return nullptr;
  }
  const tcp::endpoint bound = impl.acceptor.local_endpoint(ec);
  const std::string host = bound.address().to_string();
  impl.address = (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
  if (!bound.address().is_loopback()) {
    impl.shared->log->warn(
        "metrics on {}, not a loopback address: anyone who can reach it sees every context's "
        "figures (docs/SECURITY.md)",
        impl.address);
  }
  impl.accept();
  impl.thread = std::thread([&impl] { impl.io.run(); });
  return server;
}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  if (impl_->thread.joinable()) {
    // The sessions still open are destroyed with the io_context, closing
    // their sockets.
    impl_->io.stop();
    impl_->thread.join();
  }
}

const std::string& MetricsServer::address() const { return impl_->address; }

}  // namespace vmci::host
