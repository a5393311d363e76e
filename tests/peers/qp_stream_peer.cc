// vmci-qp-stream-peer: one queue-pair endpoint in its own process, streaming
// a deterministic byte stream through the pair in random chunk sizes.
//
//   vmci-qp-stream-peer SOCKET guest|host HANDLE|new PRODUCE CONSUME
//                       write|read SEED LENGTH|forever
//
// It connects, allocates the pair (HANDLE is CTX:RID; "new" creates one),
// prints "ready CTX:RID", then writes or reads-and-checks LENGTH bytes of
// the stream for SEED, and prints "done BYTES" or "error WHAT". Exit status
// 0 on success. A creator waits for QP_PEER_ATTACH before it streams (a host
// endpoint's calls fail with QUEUEPAIR_NOTATTACHED until its guest is there).
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <string>
#include <thread>

#include "stream_check.h"
#include "vmci/guest/driver.h"
#include "vmci/proto/names.h"

namespace {

vmci_handle parse_handle(const std::string& text) {
  if (text == "new") return VMCI_INVALID_HANDLE;
  const auto colon = text.find(':');
  return VMCI_MAKE_HANDLE(static_cast<vmci_id>(std::stoul(text.substr(0, colon))),
                          static_cast<vmci_id>(std::stoul(text.substr(colon + 1))));
}

int fail(const std::string& what) {
  std::printf("error %s\n", what.c_str());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr,
                 "usage: %s SOCKET guest|host HANDLE|new PRODUCE CONSUME write|read SEED "
                 "LENGTH|forever\n",
                 argv[0]);
    return 2;
  }
  vmci::guest::ConnectOptions options;
  options.socket_path = argv[1];
  options.role = std::string(argv[2]) == "host" ? vmci::proto::Role::kHost
                                                 : vmci::proto::Role::kGuest;
  vmci_handle handle = parse_handle(argv[3]);
  const uint64_t produce = std::stoull(argv[4]);
  const uint64_t consume = std::stoull(argv[5]);
  const bool writer = std::string(argv[6]) == "write";
  const uint64_t seed = std::stoull(argv[7]);
  const uint64_t length = std::string(argv[8]) == "forever" ? UINT64_MAX : std::stoull(argv[8]);

  int status;
  std::string error;
  auto driver = vmci::guest::Driver::connect(options, &status, &error);
  if (!driver) return fail("connect: " + error);
  std::mutex mutex;
  std::condition_variable attached_cv;
  bool attached = false;
  vmci_id subscription;
  driver->event_subscribe(
      VMCI_EVENT_QP_PEER_ATTACH,
      [&](vmci_id, vmci_event_data*) {
        std::lock_guard lock(mutex);
        attached = true;
        attached_cv.notify_all();
      },
      &subscription);
  const bool creating = handle.resource == VMCI_INVALID_ID;
  std::unique_ptr<vmci::QueuePair> qp;
  status = driver->qpair_alloc(&qp, &handle, produce, consume, VMCI_INVALID_ID, 0, 0);
  if (status < VMCI_SUCCESS) return fail("alloc: " + vmci::proto::describe_result(status));
  std::printf("ready %u:%u\n", handle.context, handle.resource);
  std::fflush(stdout);
  if (creating) {
    std::unique_lock lock(mutex);
    if (!attached_cv.wait_for(lock, std::chrono::seconds(30), [&] { return attached; })) {
      return fail("nobody attached within 30 s");
    }
  }

  const std::chrono::seconds limit(60);
  const auto outcome = writer ? vmci::testing::write_stream(*qp, seed, length, ~seed, limit)
                              : vmci::testing::read_stream(*qp, seed, length, ~seed, limit);
  if (!outcome.ok()) return fail(outcome.error);
  // A writer waits until its peer has read everything, then both detach.
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (writer && qp->produce_buf_ready() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  std::printf("done %llu\n", static_cast<unsigned long long>(outcome.bytes));
  std::fflush(stdout);
  driver->qpair_detach(&qp);
  return 0;
}
