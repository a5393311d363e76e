// vmci-test-peer: one VMCI endpoint in its own process, driven line by line
// on stdin, answering one line per command on stdout. Integration tests use
// it to put guests and hosts in separate processes.
//
//   connect SOCKET guest|host [CID|-] [restricted]  -> "0 CID" or "STATUS reason"
//   cid                                            -> CID
//   create RID|any [FLAGS [PRIV]]                  -> "STATUS CTX:RID"
//   destroy CTX:RID                                -> STATUS
//   send SRC DST HEX|-                             -> RESULT
//   subscribe EVENT_NAME                           -> "STATUS SUBID"
//   unsubscribe SUBID                              -> STATUS
//   next TIMEOUT_MS  -> "datagram DST SRC HEX" | "event SUBID NAME CID" | "none"
//   hold | release | abort                         -> "ok"
//   db-create RID|any                              -> "STATUS CTX:RID"; each callback
//                                                     queues "doorbell CTX:RID" for next
//   db-destroy CTX:RID                             -> STATUS
//   ring-storm THREADS TIMES CTX:RID...  -> "STATUS DIRECT WOKE THROUGH_HOSTPEER": 0 or the
//                                           first failed notify's status, then how the rings
//                                           went (Driver::RingCounts); each thread rings
//                                           every doorbell TIMES times
//   dg-storm SRC DST COUNT SIZE  -> "STATUS FULL": sends COUNT datagrams of SIZE (>= 8) payload
//                                   bytes, each stamped (stamped_payload), retrying one refused
//                                   with NO_RESOURCES (FULL counts those) for up to 10 s;
//                                   STATUS is 0, or the first other failure
//   dg-check COUNT TIMEOUT_MS  -> "RECEIVED WRONG FIRST_WRONG": takes COUNT items of next's
//                                 queue (each waited for up to TIMEOUT_MS), expecting the
//                                 datagrams of a dg-storm: stamped 0, 1, ... in order; WRONG
//                                 counts the others (events included)
//   stats  -> "STATUS guest_contexts=N host_connections=N host_datagram_handles=N queue_pairs=N
//              doorbells=N ring_channels=N pending_datagrams=N": what hostpeer holds now
//   quit
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <atomic>

#include "stamped_payload.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"

namespace {

using vmci::guest::Driver;

std::string to_hex(const uint8_t* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out.empty() ? "-" : out;
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  if (hex == "-") return out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string handle_text(vmci_handle h) {
  return std::to_string(h.context) + ":" + std::to_string(h.resource);
}

vmci_handle parse_handle(const std::string& text) {
  const auto colon = text.find(':');
  return VMCI_MAKE_HANDLE(static_cast<vmci_id>(std::stoul(text.substr(0, colon))),
                          static_cast<vmci_id>(std::stoul(text.substr(colon + 1))));
}

class Inbox {
 public:
  void push(std::string item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
    arrived_.notify_all();
  }
  std::string next(int timeout_ms) {
    std::unique_lock lock(mutex_);
    if (!arrived_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return !items_.empty(); })) {
      return "none";
    }
    std::string item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<std::string> items_;
};

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::unique_ptr<Driver> driver;
  Inbox inbox;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::string reply;
    if (cmd == "quit") break;
    if (cmd == "connect") {
      std::string socket, role, cid, restricted;
      in >> socket >> role >> cid >> restricted;
      vmci::guest::ConnectOptions options;
      options.socket_path = socket;
      options.role = role == "host" ? vmci::proto::Role::kHost : vmci::proto::Role::kGuest;
      if (!cid.empty() && cid != "-") options.context_id = static_cast<vmci_id>(std::stoul(cid));
      if (restricted == "restricted") options.priv_flags = VMCI_PRIVILEGE_FLAG_RESTRICTED;
      int status;
      std::string error;
      driver = Driver::connect(options, &status, &error);
      reply = driver ? "0 " + std::to_string(driver->get_context_id())
                     : std::to_string(status) + " " + error;
    } else if (!driver) {
      reply = "not connected";
    } else if (cmd == "cid") {
      reply = std::to_string(driver->get_context_id());
    } else if (cmd == "create") {
      std::string rid;
      uint32_t flags = 0, priv = 0;
      in >> rid >> flags >> priv;
      vmci_handle h = VMCI_INVALID_HANDLE;
      const vmci_id resource =
          rid == "any" ? VMCI_INVALID_ID : static_cast<vmci_id>(std::stoul(rid));
      const int status = driver->datagram_create_handle(
          resource, flags, priv,
          [&inbox](vmci_datagram* dg) {
            inbox.push("datagram " + handle_text(dg->dst) + " " + handle_text(dg->src) + " " +
                       to_hex(static_cast<uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                              static_cast<size_t>(dg->payload_size)));
            return 0;
          },
          &h);
      reply = std::to_string(status) + " " + handle_text(h);
    } else if (cmd == "destroy") {
      std::string h;
      in >> h;
      reply = std::to_string(driver->datagram_destroy_handle(parse_handle(h)));
    } else if (cmd == "send") {
      std::string src, dst, hex;
      in >> src >> dst >> hex;
      const auto payload = from_hex(hex);
      std::vector<uint8_t> buf(sizeof(vmci_datagram) + payload.size());
      auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
      dg->src = parse_handle(src);
      dg->dst = parse_handle(dst);
      dg->payload_size = payload.size();
      if (!payload.empty()) std::memcpy(VMCI_DG_PAYLOAD(dg), payload.data(), payload.size());
      reply = std::to_string(driver->datagram_send(dg));
    } else if (cmd == "subscribe") {
      std::string name;
      in >> name;
      const auto event = vmci::proto::event_from_name(name);
      vmci_id sub = 0;
      const int status = driver->event_subscribe(
          event ? *event : VMCI_EVENT_MAX,
          [&inbox](vmci_id id, vmci_event_data* ed) {
            vmci_id cid = VMCI_INVALID_ID;
            if (ed->event == VMCI_EVENT_CTX_REMOVED || ed->event == VMCI_EVENT_CTX_ID_UPDATE) {
              cid =
                  static_cast<vmci_event_payload_context*>(vmci_event_data_payload(ed))->context_id;
            }
            inbox.push("event " + std::to_string(id) + " " +
                       std::string(vmci::proto::event_name(ed->event)) + " " + std::to_string(cid));
          },
          &sub);
      reply = std::to_string(status) + " " + std::to_string(sub);
    } else if (cmd == "unsubscribe") {
      vmci_id sub = 0;
      in >> sub;
      reply = std::to_string(driver->event_unsubscribe(sub));
    } else if (cmd == "db-create") {
      std::string rid;
      in >> rid;
      vmci_handle h = VMCI_INVALID_HANDLE;  // any: the driver picks the resource
      if (!rid.empty() && rid != "any") {
        h = VMCI_MAKE_HANDLE(driver->get_context_id(), static_cast<vmci_id>(std::stoul(rid)));
      }
      auto slot = std::make_shared<vmci_handle>();  // the callback's copy of the handle
      const int status = driver->doorbell_create(&h, 0, 0, [&inbox, slot] {
        inbox.push("doorbell " + handle_text(*slot));
      });
      *slot = h;
      reply = std::to_string(status) + " " + handle_text(h);
    } else if (cmd == "db-destroy") {
      std::string h;
      in >> h;
      reply = std::to_string(driver->doorbell_destroy(parse_handle(h)));
    } else if (cmd == "next") {
      int timeout_ms = 2000;
      in >> timeout_ms;
      reply = inbox.next(timeout_ms);
      driver->sync();  // hostpeer has seen the acknowledgement of what was taken
    } else if (cmd == "hold") {
      driver->hold_callbacks();
      reply = "ok";
    } else if (cmd == "release") {
      driver->release_callbacks();
      reply = "ok";
    } else if (cmd == "ring-storm") {
      int threads = 1, times = 1;
      in >> threads >> times;
      std::vector<vmci_handle> targets;
      for (std::string h; in >> h;) targets.push_back(parse_handle(h));
      std::atomic<int> failure{0};
      const Driver::RingCounts before = driver->ring_counts();
      std::vector<std::thread> ringers;
      for (int t = 0; t < threads; ++t) {
        ringers.emplace_back([&] {
          for (int n = 0; n < times; ++n) {
            for (const auto& target : targets) {
              const int status = driver->doorbell_notify(target, 0);
              if (status < VMCI_SUCCESS) failure = status;
            }
          }
        });
      }
      for (auto& r : ringers) r.join();
      const Driver::RingCounts after = driver->ring_counts();
      reply = std::to_string(failure.load()) + " " + std::to_string(after.direct - before.direct) +
              " " + std::to_string(after.direct_woke - before.direct_woke) + " " +
              std::to_string(after.through_hostpeer - before.through_hostpeer);
    } else if (cmd == "dg-storm") {
      std::string src, dst;
      uint64_t count = 0;
      size_t size = 8;
      in >> src >> dst >> count >> size;
      std::vector<uint8_t> buf(sizeof(vmci_datagram) + std::max<size_t>(size, 8));
      auto* dg = reinterpret_cast<vmci_datagram*>(buf.data());
      dg->src = parse_handle(src);
      dg->dst = parse_handle(dst);
      dg->payload_size = buf.size() - sizeof(vmci_datagram);
      int status = 0;
      uint64_t full = 0;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      for (uint64_t seq = 0; seq < count && status == 0;) {
        vmci::testing::stamped_payload(seq, static_cast<uint8_t*>(VMCI_DG_PAYLOAD(dg)),
                                       static_cast<size_t>(dg->payload_size));
        const int result = driver->datagram_send(dg);
        if (result == VMCI_ERROR_NO_RESOURCES && std::chrono::steady_clock::now() < deadline) {
          ++full;
          std::this_thread::yield();
        } else if (result < VMCI_SUCCESS) {
          status = result;
        } else {
          ++seq;
        }
      }
      reply = std::to_string(status) + " " + std::to_string(full);
    } else if (cmd == "dg-check") {
      uint64_t count = 0, received = 0, wrong = 0, first_wrong = 0;
      int timeout_ms = 5000;
      in >> count >> timeout_ms;
      for (; received < count; ++received) {
        std::istringstream item(inbox.next(timeout_ms));
        std::string kind, dst, src, hex;
        item >> kind >> dst >> src >> hex;
        if (kind == "none") break;
        const std::vector<uint8_t> payload = from_hex(hex);
        const bool right = kind == "datagram" && payload.size() >= 8 &&
                           vmci::testing::stamped_sequence(payload.data(), payload.size()) ==
                               received;
        if (!right && wrong++ == 0) first_wrong = received;
      }
      driver->sync();
      reply = std::to_string(received) + " " + std::to_string(wrong) + " " +
              std::to_string(first_wrong);
    } else if (cmd == "stats") {
      vmci::Stats stats;
      const int status = driver->hostpeer_stats(&stats);
      reply = std::to_string(status) + " guest_contexts=" + std::to_string(stats.guest_contexts) +
              " host_connections=" + std::to_string(stats.host_connections) +
              " host_datagram_handles=" + std::to_string(stats.host_datagram_handles) +
              " queue_pairs=" + std::to_string(stats.queue_pairs) +
              " doorbells=" + std::to_string(stats.doorbells) +
              " ring_channels=" + std::to_string(stats.ring_channels) +
              " pending_datagrams=" + std::to_string(stats.pending_datagrams);
    } else if (cmd == "abort") {
      driver->abort();
      reply = "ok";
    } else {
      reply = "unknown command " + cmd;
    }
    std::printf("%s\n", reply.c_str());
  }
  return 0;
}
