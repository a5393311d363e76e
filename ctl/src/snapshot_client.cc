#include "snapshot_client.h"

#include "connection.h"
#include "vmci/proto/names.h"

namespace vmci::ctl {

using guest::internal::Connection;

// What the connection's reader thread needs to acknowledge a delivery:
// the connection, once open.
struct SnapshotClient::Holder {
  Connection* connection = nullptr;
};

SnapshotClient::SnapshotClient() : holder_(std::make_shared<Holder>()) {}

SnapshotClient::~SnapshotClient() {
  connection_.reset();  // the reader thread ends before the holder goes
}

std::unique_ptr<SnapshotClient> SnapshotClient::open(const std::string& socket_path,
                                                     std::string* error) {
  std::unique_ptr<SnapshotClient> client(new SnapshotClient());
  guest::ConnectOptions options;
  options.socket_path = socket_path;
  options.role = Role::kHost;
  Connection::Sink sink;
  sink.deliver = [holder = client->holder_](uint32_t delivery_id, std::vector<uint8_t>) {
    if (holder->connection != nullptr) holder->connection->acknowledge(delivery_id);
  };
  // It creates nothing, so nothing else hostpeer pushes concerns it.
  sink.closed = [](const std::string&) {};
  sink.ring_grant = [](const proto::RingGrantBody&, std::shared_ptr<proto::RingChannel>) {};
  sink.ring_channel_closed = [](const proto::RingChannelClosedBody&) {};
  sink.queue_pair_memory = [](std::shared_ptr<guest::internal::QueuePairMemoryFrame>) {};
  int status = 0;
  client->connection_ = Connection::open(options, std::move(sink), &status, error);
  if (!client->connection_) return nullptr;
  client->holder_->connection = client->connection_.get();
  return client;
}

bool SnapshotClient::fetch(std::string* json, std::string* error) {
  const proto::DeliveredBody body{};
  const Connection::Reply reply =
      connection_->request(proto::FrameType::kIntrospect, proto::body_bytes(body));
  if (reply.result == VMCI_ERROR_UNAVAILABLE && !connection_->alive()) {
    *error = "hostpeer ended the connection (" + connection_->close_reason() +
             "); a hostpeer older than protocol 2.2 has no introspection";
    return false;
  }
  if (reply.result < VMCI_SUCCESS) {
    *error = "hostpeer refused the introspection request: " +
             std::string(proto::status_name(static_cast<int>(reply.result)));
    return false;
  }
  json->assign(reply.extra.begin(), reply.extra.end());
  return true;
}

}  // namespace vmci::ctl
