// metrics_server.h: serves GET /metrics over HTTP (Boost.Beast) on its
// own thread, for Prometheus to scrape (vmci-hostpeer --metrics ADDR:PORT).
//
// Each scrape calls `render` once, on the server's thread, and answers with
// what it returns. Every other path is 404, every other method 405. A
// request is read within `read_timeout` and at most `max_request_bytes`
// long, an answer written within the same timeout, and at most
// `max_connections` clients are served at once (the ones past that are
// closed when accepted): a slow, silent or hostile client holds one
// connection of the server for at most a timeout, and nothing of hostpeer.
//
//   std::string error;
//   auto server = MetricsServer::start("127.0.0.1:9464", [&] { return text(); }, {}, log, &error);
//   if (!server) { log->error("{}", error); return 1; }
//   log->info("metrics on http://{}/metrics", server->address());
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace vmci::host {

// ADDR:PORT as the user wrote it: an IPv4 address, `localhost`, or an
// IPv6 address in brackets ([::1]:9464). Port 0 picks a free port.
struct ListenAddress {
  std::string host;  // the address without brackets ("127.0.0.1", "::1")
  uint16_t port = 0;
};
// nullopt with *error saying what was wrong and what is expected.
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error);

struct MetricsServerLimits {
  uint32_t max_request_bytes = 8192;  // request line and headers; no body is taken
  std::chrono::milliseconds read_timeout{5000};
  uint32_t max_connections = 16;
};

class MetricsServer {
 public:
  // Returns the body of a 200 answer (metrics_text.h's format).
  using Render = std::function<std::string()>;

  // Listens on `address` and serves from a thread of its own; null with
  // *error if the address is not one (parse_listen_address) or cannot be
  // listened on (in use, not this machine's). Warns on `log` when the
  // address is not a loopback one: the metrics are then visible from
  // elsewhere.
  static std::unique_ptr<MetricsServer> start(std::string_view address, Render render,
                                              MetricsServerLimits limits,
                                              std::shared_ptr<spdlog::logger> log,
                                              std::string* error);
  // Stops listening, closes every connection and joins the thread.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address it listens on, with the port it got ("127.0.0.1:40123",
  // "[::1]:9464").
  const std::string& address() const;

 private:
  MetricsServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmci::host
