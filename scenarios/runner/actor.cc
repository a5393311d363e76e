#include "actor.h"

#include <algorithm>
#include <cstring>

#include "vmci/proto/handles.h"
#include "vmci/proto/names.h"

namespace vmci::scenario {

std::string InboxItem::describe() const {
  if (kind == Kind::kDoorbell) return "doorbell " + proto::to_string(dst) + " rung";
  if (kind == Kind::kDatagram) {
    std::string text = "datagram " + proto::to_string(src) + " -> " + proto::to_string(dst) + " (" +
                       std::to_string(payload.size()) + " bytes";
    // Short printable payloads are shown, for the reader of a report.
    const bool printable = !payload.empty() && payload.size() <= 32 &&
                           std::all_of(payload.begin(), payload.end(),
                                       [](uint8_t c) { return c >= 0x20 && c < 0x7f; });
    if (printable) text += ": \"" + std::string(payload.begin(), payload.end()) + "\"";
    return text + ")";
  }
  std::string text = "event " + std::string(proto::event_name(event)) + " (subscription " +
                     std::to_string(subscription);
  if (event == VMCI_EVENT_CTX_REMOVED || event == VMCI_EVENT_CTX_ID_UPDATE) {
    text += ", context " + std::to_string(context_id);
  } else if (event == VMCI_EVENT_QP_PEER_ATTACH || event == VMCI_EVENT_QP_PEER_DETACH) {
    text += ", queue pair " + proto::to_string(qp) + ", peer " + std::to_string(peer_id);
  }
  return text + ")";
}

void Inbox::push(InboxItem item) {
  {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
  }
  arrived_.notify_all();
}

std::optional<InboxItem> Inbox::take(const std::function<bool(const InboxItem&)>& match,
                                     Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  for (;;) {
    for (size_t checked = 0; checked < items_.size(); ++checked) {
      if (match(items_[checked])) {
        InboxItem item = std::move(items_[checked]);
        items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(checked));
        return item;
      }
    }
    const size_t seen = items_.size();
    if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout && items_.size() == seen) {
      return std::nullopt;
    }
  }
}

std::optional<InboxItem> Inbox::peek_any(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  if (!arrived_.wait_until(lock, deadline, [&] { return !items_.empty(); })) return std::nullopt;
  return items_.front();
}

std::vector<InboxItem> Inbox::contents() {
  std::lock_guard lock(mutex_);
  return {items_.begin(), items_.end()};
}

void Inbox::clear() {
  std::lock_guard lock(mutex_);
  items_.clear();
}

nlohmann::json to_json(const ActorSpec& spec) {
  nlohmann::json j{{"name", spec.name}, {"host", spec.host}, {"priv_flags", spec.priv_flags}};
  if (spec.context_id) j["context_id"] = *spec.context_id;
  return j;
}

ActorSpec actor_spec_from_json(const nlohmann::json& j) {
  ActorSpec spec;
  spec.name = j.at("name").get<std::string>();
  spec.host = j.at("host").get<bool>();
  spec.priv_flags = j.at("priv_flags").get<uint32_t>();
  if (j.contains("context_id")) spec.context_id = j["context_id"].get<vmci_id>();
  return spec;
}

nlohmann::json to_json(const InboxItem& item) {
  return {{"event", item.event},
          {"subscription", item.subscription},
          {"context_id", item.context_id},
          {"qp_context", item.qp.context},
          {"qp_resource", item.qp.resource},
          {"peer_id", item.peer_id}};
}

InboxItem inbox_item_from_json(const nlohmann::json& j) {
  InboxItem item;
  item.kind = InboxItem::Kind::kEvent;
  item.event = j.at("event").get<uint32_t>();
  item.subscription = j.at("subscription").get<vmci_id>();
  item.context_id = j.at("context_id").get<vmci_id>();
  item.qp = VMCI_MAKE_HANDLE(j.at("qp_context").get<vmci_id>(), j.at("qp_resource").get<vmci_id>());
  item.peer_id = j.at("peer_id").get<vmci_id>();
  return item;
}

int Actor::watch_peer_events() {
  if (process_) {
    const auto answer = process_->request({{"op", "watch"}});
    return answer.contains("lost") ? VMCI_ERROR_UNAVAILABLE : answer.value("status", VMCI_ERROR_GENERIC);
  }
  if (!driver_) return VMCI_ERROR_UNAVAILABLE;
  vmci_id id;
  int status = driver_->event_subscribe(VMCI_EVENT_QP_PEER_DETACH, event_callback(&watched_), &id);
  if (status >= VMCI_SUCCESS && spec_.host) {
    status = driver_->event_subscribe(VMCI_EVENT_CTX_REMOVED, event_callback(&watched_), &id);
  }
  return status < VMCI_SUCCESS ? status : 0;
}

std::vector<InboxItem> Actor::watched() {
  if (process_) {
    std::vector<InboxItem> out;
    const auto answer = process_->request({{"op", "watched"}});
    for (const auto& item : answer.value("items", nlohmann::json::array())) {
      out.push_back(inbox_item_from_json(item));
    }
    return out;
  }
  return watched_.contents();
}

std::vector<vmci_handle> Actor::live_queue_pairs() {
  std::vector<vmci_handle> handles;
  if (process_) {
    const auto answer = process_->request({{"op", "live_queue_pairs"}});
    for (const auto& h : answer.value("handles", nlohmann::json::array())) {
      handles.push_back(VMCI_MAKE_HANDLE(h.at(0).get<vmci_id>(), h.at(1).get<vmci_id>()));
    }
    return handles;
  }
  {
    std::lock_guard lock(qpairs_mutex_);
    for (const auto& [name, qp] : qpairs_) {
      if (qp) handles.push_back(qp->handle());
    }
  }
  for (const vmci_handle h : vsock_.queue_pairs()) handles.push_back(h);
  return handles;
}

std::vector<std::string> Actor::leftovers() {
  std::vector<std::string> out;
  if (spec_.process) {
    if (process_) {
      const auto answer = process_->request({{"op", "leftovers"}});
      if (answer.contains("items")) out = answer["items"].get<std::vector<std::string>>();
    }
    return out;
  }
  for (const auto& item : inbox_.contents()) out.push_back(item.describe());
  return out;
}

int Actor::connect(const std::string& socket_path, std::string* error) {
  vsock_.drop();
  driver_.reset();
  killed_ = false;
  inbox_.clear();
  watched_.clear();
  if (spec_.process) {
    process_.reset();
    context_id_ = VMCI_INVALID_ID;
    try {
      process_ = std::make_unique<ProcessActor>(to_json(spec_), program_);
    } catch (const std::exception& e) {
      *error = e.what();
      return VMCI_ERROR_NO_RESOURCES;
    }
    const auto answer = process_->request({{"op", "connect"}, {"socket", socket_path}});
    if (answer.contains("lost")) {
      *error = answer["lost"].get<std::string>();
      return VMCI_ERROR_UNAVAILABLE;
    }
    *error = answer.value("error", "");
    context_id_ = answer.value("context_id", VMCI_INVALID_ID);
    return answer.value("status", VMCI_ERROR_UNAVAILABLE);
  }
  vmci::guest::ConnectOptions options;
  options.socket_path = socket_path;
  options.role = spec_.host ? proto::Role::kHost : proto::Role::kGuest;
  if (spec_.context_id) options.context_id = *spec_.context_id;
  options.priv_flags = spec_.priv_flags;
  int status = VMCI_ERROR_UNAVAILABLE;
  driver_ = vmci::guest::Driver::connect(options, &status, error);
  context_id_ = driver_ ? driver_->get_context_id() : VMCI_INVALID_ID;
  return status;
}

bool Actor::connected() {
  if (spec_.process) return process_ && process_->alive() && context_id_ != VMCI_INVALID_ID;
  return !killed_ && driver_ && driver_->connected();
}

void Actor::kill() {
  killed_ = true;  // at once: the connection's reader sees its end a moment later
  if (driver_) driver_->abort();
  if (process_) process_->kill();
}

void Actor::disconnect() {
  vsock_.drop();
  driver_.reset();
  if (process_) {
    process_->request({{"op", "disconnect"}});
    process_.reset();
  }
}

DatagramCallback Actor::datagram_callback() {
  return [this](vmci_datagram* dg) {
    InboxItem item;
    item.kind = InboxItem::Kind::kDatagram;
    item.dst = dg->dst;
    item.src = dg->src;
    const auto* payload = static_cast<const uint8_t*>(VMCI_DG_PAYLOAD(dg));
    item.payload.assign(payload, payload + dg->payload_size);
    inbox_.push(std::move(item));
    return VMCI_SUCCESS;
  };
}

DoorbellCallback Actor::doorbell_callback(std::shared_ptr<DoorbellSlot> slot) {
  return [this, slot] {
    InboxItem item;
    item.kind = InboxItem::Kind::kDoorbell;
    // A ring can come just before doorbell_create has returned the handle.
    if (slot->handle.wait_for(std::chrono::seconds(5)) == std::future_status::ready) {
      item.dst = slot->handle.get();
    }
    inbox_.push(std::move(item));
  };
}

EventCallback Actor::event_callback(Inbox* into) {
  Inbox* inbox = into != nullptr ? into : &inbox_;
  return [inbox](vmci_id sub_id, vmci_event_data* ed) {
    InboxItem item;
    item.kind = InboxItem::Kind::kEvent;
    item.subscription = sub_id;
    item.event = ed->event;
    if (ed->event == VMCI_EVENT_CTX_REMOVED || ed->event == VMCI_EVENT_CTX_ID_UPDATE) {
      vmci_event_payload_context p;
      std::memcpy(&p, vmci_event_data_payload(ed), sizeof p);
      item.context_id = p.context_id;
    } else if (ed->event == VMCI_EVENT_QP_PEER_ATTACH || ed->event == VMCI_EVENT_QP_PEER_DETACH) {
      vmci_event_payload_qp p;
      std::memcpy(&p, vmci_event_data_payload(ed), sizeof p);
      item.qp = p.handle;
      item.peer_id = p.peer_id;
    }
    inbox->push(std::move(item));
  };
}

void Actor::set_qpair(const std::string& name, std::unique_ptr<QueuePair> qpair) {
  std::lock_guard lock(qpairs_mutex_);
  qpairs_[name] = std::move(qpair);
}

std::unique_ptr<QueuePair>* Actor::qpair_slot(const std::string& name) {
  std::lock_guard lock(qpairs_mutex_);
  auto it = qpairs_.find(name);
  return it == qpairs_.end() ? nullptr : &it->second;
}

}  // namespace vmci::scenario
