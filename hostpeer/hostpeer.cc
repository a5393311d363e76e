#include "vmci/host/hostpeer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "core/request_capture.h"
#include "core/request_trace.h"
#include "embedded/embedded_endpoint.h"
#include "log_sink.h"
#include "metrics/metrics_server.h"
#include "metrics/metrics_text.h"
#include "server/asio.h"
#include "server/locked_core.h"
#include "server/server.h"
#include "vmci/trace/traced_endpoint.h"

namespace vmci::host {

struct HostPeer::Impl {
  Impl(const Options& options, std::shared_ptr<spdlog::logger> log)
      : logger(std::move(log)),
        core(options.limits, logger),
        server(io, core, PeerPolicy{::getuid(), options.guest_uids, options.host_uids},
               options.hello_deadline, logger) {}

  std::shared_ptr<spdlog::logger> logger;
  LockedCore core;
  boost::asio::io_context io;
  Server server;
  std::string socket_path;
  std::thread io_thread;
  std::string metrics_address;
  // Last, so it stops before what it renders goes.
  std::unique_ptr<MetricsServer> metrics;
};

HostPeer::HostPeer() = default;

std::unique_ptr<HostPeer> HostPeer::start(const Options& options, std::string* error) {
  auto log = make_logger(options.log, options.log_level);
  std::unique_ptr<HostPeer> peer(new HostPeer());
  peer->impl_ = std::make_unique<Impl>(options, log);
  Impl& impl = *peer->impl_;
  std::string local_error;
  std::vector<std::shared_ptr<RequestObserver>> observers;  // --trace, --capture
  if (!options.trace_path.empty()) {
    auto file = trace::TraceFile::open(options.trace_path, error ? error : &local_error);
    if (!file) {
      if (options.listening_socket >= 0) ::close(options.listening_socket);
      return nullptr;
    }
    observers.push_back(std::make_shared<RequestTrace>(std::move(file)));
  }
  if (!options.capture_path.empty()) {
    auto file = trace::PcapngFile::open(options.capture_path, trace::kLinkTypeUser0,
                                        "vmci-hostpeer", error ? error : &local_error);
    if (!file) {
      if (options.listening_socket >= 0) ::close(options.listening_socket);
      return nullptr;
    }
    observers.push_back(std::make_shared<RequestCapture>(std::move(file)));
  }
  if (!observers.empty()) {
    std::shared_ptr<RequestObserver> observer =
        observers.size() == 1 ? observers.front()
                              : std::make_shared<RequestObservers>(std::move(observers));
    impl.core.with([&](Hypervisor& core) { core.observe_with(std::move(observer)); });
  }
  if (!options.metrics_address.empty()) {
    auto render = [&impl] {
      std::string ignored;  // a scrape without process figures still has hostpeer's
      return metrics_text(impl.core.with([](Hypervisor& core) { return core.introspect(); }),
                          read_process_figures(&ignored));
    };
    impl.metrics = MetricsServer::start(options.metrics_address, std::move(render), {}, log,
                                        error ? error : &local_error);
    if (!impl.metrics) {
      if (options.listening_socket >= 0) ::close(options.listening_socket);
      return nullptr;
    }
    impl.metrics_address = impl.metrics->address();
    log->info("metrics on http://{}/metrics", impl.metrics_address);
  }
  if (options.listening_socket >= 0) {
    if (!impl.server.adopt(options.listening_socket, error ? error : &local_error)) return nullptr;
    impl.socket_path = impl.server.path();
  } else if (!options.socket_path.empty()) {
    if (!impl.server.listen(options.socket_path, error ? error : &local_error)) return nullptr;
    impl.socket_path = options.socket_path;
  }
  impl.io_thread = std::thread([&impl] {
    auto guard = boost::asio::make_work_guard(impl.io);
    impl.io.run();
  });
  return peer;
}

HostPeer::~HostPeer() {
  if (!impl_) return;
  impl_->metrics.reset();
  if (impl_->io_thread.joinable()) {
    std::promise<void> stopped;
    boost::asio::post(impl_->io, [&] {
      impl_->server.stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    impl_->io.stop();
    impl_->io_thread.join();
  }
}

const std::string& HostPeer::socket_path() const { return impl_->socket_path; }

const std::string& HostPeer::metrics_address() const { return impl_->metrics_address; }

std::unique_ptr<Endpoint> HostPeer::connect_host() {
  auto endpoint = std::make_unique<EmbeddedEndpoint>(impl_->core, impl_->logger);
  std::string error;
  auto file = trace::trace_file_from_environment(&error);
  if (!file) {
    if (!error.empty() && impl_->logger) impl_->logger->warn("VMCI_TRACE: {}; not tracing", error);
    return endpoint;
  }
  return std::make_unique<trace::TracedEndpoint>(
      std::move(endpoint), std::move(file),
      trace::EndpointIdentity{proto::Role::kHost, true, VMCI_HOST_CONTEXT_ID});
}

int HostPeer::update_context_id(vmci_id old_cid, vmci_id new_cid) {
  return impl_->core.with(
      [&](Hypervisor& core) { return core.update_context_id(old_cid, new_cid); });
}

Stats HostPeer::stats() const {
  return impl_->core.with([](Hypervisor& core) { return core.stats(); });
}

Introspection HostPeer::introspect() const {
  return impl_->core.with([](Hypervisor& core) { return core.introspect(); });
}

}  // namespace vmci::host
