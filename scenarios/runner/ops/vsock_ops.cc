// The vSockets ops: stream and datagram sockets over the actor's
// connection (vmci/vsock/), as a program uses them through AF_VSOCK. Each
// returns what a system call does: a count, or a negated errno value, which
// `expect` names ("ECONNRESET"). Sockets are variables the actor holds
// (runner/vsock_sockets.h); a blocking call waits at most `wait_ms`.
#include <algorithm>
#include <cerrno>

#include "runner/ops/op_context.h"
#include "runner/ops/op_table.h"

namespace vmci::scenario {
namespace {

using enum ValueKind;
using enum KeyNeed;

constexpr int kDefaultBacklog = 16;
constexpr int64_t kDefaultConnectTimeoutMs = 2000;  // Linux's, and the transport's

int64_t failed(const std::error_code& ec) { return -static_cast<int64_t>(ec.value()); }

// The transport of the actor's connection, opened by the first op.
std::shared_ptr<vsock::Transport> transport(Actor& a, std::error_code& ec) {
  return a.vsock().transport(*a.driver(), ec);
}

// A port value: a number, "any", or a variable: a socket (its port) or a number.
uint32_t port_of(OpContext& run, const nlohmann::json& v) {
  if (v == "any") return vsock::kPortAny;
  if (v.is_string()) {
    const std::string name = v;
    const Value value = run.variable(name);
    if (value.is_handle || value.owned == Owned::kQueuePair) {
      fail_step(name + " is neither a vsock socket nor a number, so it is no port");
    }
    return static_cast<uint32_t>(value.number);
  }
  return v.get<uint32_t>();
}

// How long a blocking call waits: `wait_ms` (2000 unless the step says), scaled.
vsock::Timeout wait_of(OpContext& run, const Step& step) {
  return run.scaled(step.args.value("wait_ms", kWaitTimeoutMs));
}

// The socket of kind T that key `key` of the step names, held by `a`.
template <typename T>
std::shared_ptr<T> socket_of(OpContext& run, const Step& step, Actor& a, const char* key,
                             Owned kind) {
  const std::string name = step.args[key];
  owned_variable(run, name, kind, a.spec().name);
  std::shared_ptr<T> socket = a.vsock().find<T>(name);
  if (!socket) fail_step(name + " is closed");
  return socket;
}

Value bound(Owned kind, uint32_t port, Actor& a) {
  return Value{false, VMCI_INVALID_HANDLE, port, kind, a.spec().name};
}

// Fails the step if the bytes read differ from `expect_data` (when the
// step has it); then binds its `capture` variables from them.
void check_data(OpContext& run, const Step& step, const std::vector<uint8_t>& got) {
  if (step.args.contains("expect_data")) {
    const Data expected = data_of(run, step.args["expect_data"]);
    if (auto m = compare(expected, got)) {
      fail_step("data differs: " + m->message, expected.describe(),
                std::to_string(got.size()) + " bytes");
    }
  }
  capture(run, step, got);
}

ApiResult vsock_listen(OpContext& run, const Step& step, Actor& a) {
  std::error_code ec;
  auto t = transport(a, ec);
  if (!t) return {failed(ec), {}};
  const int backlog = step.args.value("backlog", kDefaultBacklog);
  std::unique_ptr<vsock::Listener> listener =
      t->listen(port_of(run, step.args["port"]), std::max(backlog, 1), ec);
  if (!listener) return {failed(ec), {}};
  const uint32_t port = listener->local_address().port;
  if (!step.as.empty())
    a.vsock().add(step.as, std::shared_ptr<vsock::Listener>(std::move(listener)));
  return {0, bound(Owned::kVsockListener, port, a)};
}

ApiResult vsock_connect(OpContext& run, const Step& step, Actor& a) {
  std::error_code ec;
  auto t = transport(a, ec);
  if (!t) return {failed(ec), {}};
  const nlohmann::json& args = step.args;
  const vsock::Address remote{run.context(args["cid"]), port_of(run, args["port"])};
  const uint32_t local_port =
      args.contains("local_port") ? port_of(run, args["local_port"]) : vsock::kPortAny;
  const vsock::Timeout timeout =
      run.scaled(args.value("connect_timeout_ms", kDefaultConnectTimeoutMs));
  std::unique_ptr<vsock::Stream> stream = t->connect(remote, ec, timeout, local_port);
  if (!stream) return {failed(ec), {}};
  const uint32_t port = stream->local_address().port;
  if (!step.as.empty()) a.vsock().add(step.as, std::shared_ptr<vsock::Stream>(std::move(stream)));
  return {0, bound(Owned::kVsockStream, port, a)};
}

ApiResult vsock_accept(OpContext& run, const Step& step, Actor& a) {
  auto listener = socket_of<vsock::Listener>(run, step, a, "listener", Owned::kVsockListener);
  std::error_code ec;
  std::unique_ptr<vsock::Stream> stream = listener->accept(wait_of(run, step), ec);
  if (!stream) return {failed(ec), {}};
  const uint32_t port = stream->local_address().port;
  if (!step.as.empty()) a.vsock().add(step.as, std::shared_ptr<vsock::Stream>(std::move(stream)));
  return {0, bound(Owned::kVsockStream, port, a)};
}

ApiResult vsock_send(OpContext& run, const Step& step, Actor& a) {
  auto stream = socket_of<vsock::Stream>(run, step, a, "stream", Owned::kVsockStream);
  const std::vector<uint8_t> bytes = data_of(run, step.args["data"]).materialize();
  std::error_code ec;
  const size_t written = stream->write_all(bytes.data(), bytes.size(), ec, wait_of(run, step));
  if (ec) return {failed(ec), {}};
  return {static_cast<int64_t>(written), {}};
}

ApiResult vsock_recv(OpContext& run, const Step& step, Actor& a) {
  auto stream = socket_of<vsock::Stream>(run, step, a, "stream", Owned::kVsockStream);
  const uint64_t size = size_of(step.args["size"]);
  std::vector<uint8_t> got(size);
  size_t have = 0;
  std::error_code ec;
  if (step.args.value("peek", false)) {
    have = stream->read_some(got.data(), size, wait_of(run, step), ec, true);
  } else {
    // Until `size` bytes came, the stream ended, or the wait passed.
    const auto until = Clock::now() + *wait_of(run, step);
    while (have < size) {
      const auto left =
          std::max(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()),
                   std::chrono::milliseconds(0));
      const size_t n = stream->read_some(got.data() + have, size - have, left, ec);
      if (ec || n == 0) break;
      have += n;
    }
  }
  if (have == 0 && ec) return {failed(ec), {}};
  got.resize(have);
  check_data(run, step, got);
  return {static_cast<int64_t>(have), {}};
}

ApiResult vsock_shutdown(OpContext& run, const Step& step, Actor& a) {
  auto stream = socket_of<vsock::Stream>(run, step, a, "stream", Owned::kVsockStream);
  const std::string how = step.args["how"];
  const uint32_t mode = how == "RD"   ? vsock::kReceiveShutdown
                        : how == "WR" ? vsock::kSendShutdown
                                      : vsock::kShutdownMask;
  const std::error_code ec = stream->shutdown(mode);
  return {ec ? failed(ec) : 0, {}};
}

ApiResult vsock_close(OpContext& run, const Step& step, Actor& a) {
  const std::string name = step.args["socket"];
  owned_variable(run, name, owned_kinds(kVsockSocket), a.spec().name);
  if (!a.vsock().close(name)) fail_step(name + " is closed already");
  return {0, {}};
}

ApiResult vsock_dgram_bind(OpContext& run, const Step& step, Actor& a) {
  std::error_code ec;
  std::unique_ptr<vsock::DatagramSocket> socket = vsock::DatagramSocket::bind(
      *a.driver(), {vsock::kCidAny, port_of(run, step.args["port"])}, ec);
  if (!socket) return {failed(ec), {}};
  const uint32_t port = socket->local_address().port;
  if (!step.as.empty()) {
    a.vsock().add(step.as, std::shared_ptr<vsock::DatagramSocket>(std::move(socket)));
  }
  return {0, bound(Owned::kVsockDatagram, port, a)};
}

ApiResult vsock_sendto(OpContext& run, const Step& step, Actor& a) {
  auto socket = socket_of<vsock::DatagramSocket>(run, step, a, "socket", Owned::kVsockDatagram);
  const std::vector<uint8_t> bytes = data_of(run, step.args["data"]).materialize();
  const vsock::Address to{run.context(step.args["cid"]), port_of(run, step.args["port"])};
  std::error_code ec;
  const size_t sent = socket->send_to(bytes.data(), bytes.size(), to, ec);
  return {ec ? failed(ec) : static_cast<int64_t>(sent), {}};
}

ApiResult vsock_recvfrom(OpContext& run, const Step& step, Actor& a) {
  auto socket = socket_of<vsock::DatagramSocket>(run, step, a, "socket", Owned::kVsockDatagram);
  std::vector<uint8_t> got(std::max<uint64_t>(size_of(step.args["size"]), 1));
  vsock::Address from;
  std::error_code ec;
  const size_t n =
      socket->receive_from(got.data(), size_of(step.args["size"]), &from, wait_of(run, step), ec);
  if (ec) return {failed(ec), {}};
  got.resize(n);
  check_data(run, step, got);
  if (step.args.contains("expect_from")) {
    const nlohmann::json& want = step.args["expect_from"];
    const bool cid_ok = !want.contains("cid") || run.context(want["cid"]) == from.cid;
    const bool port_ok = !want.contains("port") || port_of(run, want["port"]) == from.port;
    if (!cid_ok || !port_ok)
      fail_step("the datagram came from elsewhere", want.dump(), to_string(from));
  }
  return {static_cast<int64_t>(n), {}};
}

// A vSockets op: every one is an API call of an actor, played by a process
// actor's child, not recorded (a trace holds the VMCI calls it made), and
// answering as a system call does.
OpSpec vsock_op(std::string_view name, ApiCall call, std::vector<KeySpec> keys,
                std::string_view summary) {
  return {.name = name,
          .kind = OpKind::kApi,
          .actor = ActorRule::kRequired,
          .keys = std::move(keys),
          .summary = summary,
          .call = call,
          .in_process = InProcess::kChildPlaysIt,
          .recorded = {},
          .results = ResultDomain::kErrno};
}

}  // namespace

std::vector<OpSpec> vsock_ops() {
  return {
      vsock_op("vsock_listen", vsock_listen, {{"port", kPort}, {"backlog", kBacklog, kOptional}},
               "listens on a stream port (\"any\": an ephemeral one) with room for "
               "backlog (16) connections; 0 or -errno, binds the listener"),
      vsock_op("vsock_connect", vsock_connect,
               {{"cid", kContext},
                {"port", kPort},
                {"local_port", kPort, kOptional},
                {"connect_timeout_ms", kMilliseconds, kOptional}},
               "connects a stream to cid:port (the handshake done); 0 or -errno, "
               "binds the stream"),
      vsock_op("vsock_accept", vsock_accept,
               {{"listener", kVsockListener}, {"wait_ms", kMilliseconds, kOptional}},
               "takes the next connection, waiting wait_ms (2000); 0 or -errno "
               "(EAGAIN), binds the stream"),
      vsock_op("vsock_send", vsock_send,
               {{"stream", kVsockStream}, {"data", kData}, {"wait_ms", kMilliseconds, kOptional}},
               "writes all of data, each wait for room at most wait_ms (2000); its "
               "size or -errno"),
      vsock_op("vsock_recv", vsock_recv,
               {{"stream", kVsockStream},
                {"size", kSize},
                {"expect_data", kData, kOptional},
                {"peek", kBoolean, kOptional},
                {"wait_ms", kMilliseconds, kOptional},
                {"capture", kCapture, kOptional}},
               "reads until size bytes came, the stream ended or wait_ms (2000) "
               "passed (peek: what is there, left queued), checks and captures them; "
               "bytes read (0: end of stream) or -errno"),
      vsock_op("vsock_shutdown", vsock_shutdown, {{"stream", kVsockStream}, {"how", kShutdownHow}},
               "shuts down receiving (RD), sending (WR) or both; 0 or -errno"),
      vsock_op("vsock_close", vsock_close, {{"socket", kVsockSocket}},
               "closes a listener, stream or datagram socket; 0"),
      vsock_op("vsock_dgram_bind", vsock_dgram_bind, {{"port", kPort}},
               "binds a datagram socket to a port (\"any\": VMCI picks one); 0 or "
               "-errno, binds the socket"),
      vsock_op("vsock_sendto", vsock_sendto,
               {{"socket", kVsockDatagram}, {"cid", kContext}, {"port", kPort}, {"data", kData}},
               "sends one datagram to cid:port; its size or -errno"),
      vsock_op("vsock_recvfrom", vsock_recvfrom,
               {{"socket", kVsockDatagram},
                {"size", kSize},
                {"expect_data", kData, kOptional},
                {"expect_from", kVsockAddress, kOptional},
                {"wait_ms", kMilliseconds, kOptional},
                {"capture", kCapture, kOptional}},
               "takes the next datagram (at most size bytes of it), waiting wait_ms "
               "(2000), checks and captures it; bytes taken or -errno"),
  };
}

}  // namespace vmci::scenario
