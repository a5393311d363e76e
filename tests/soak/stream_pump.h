// stream_pump.h: one direction of an endless queue-pair stream, for the
// soak. The writer enqueues the ByteStream of a seed (tests/support) in
// random chunk sizes until told to stop; the reader dequeues it and checks
// every byte until it has read as many bytes as the writer says it wrote.
//
//   StreamPump::Control control;                    // shared with the owner
//   std::thread t([&] { outcome = pump_out(qp, seed, chunk_seed, control); });
//   ... control.stop = true; t.join();              // outcome.bytes were enqueued
//
// Either side ends early, without error, when its peer is gone
// (VMCI_ERROR_QUEUEPAIR_NOTATTACHED: the other endpoint detached or died):
// the stream then ends at the kill. Any other failure, or a byte that
// differs, is an error. Both honour the queue-pair threading contract: one
// pump_out and one pump_in per pair at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "vmci/queue_pair.h"

namespace vmci::soak {

// How the owner steers a running pump; the pump only reads it.
struct PumpControl {
  std::atomic<bool> stop{false};      // writer: stop enqueuing now
  std::atomic<uint64_t> target{UINT64_MAX};  // reader: stop after this many bytes
  std::atomic<bool> abandon{false};   // either: give up now (teardown after a failure)
  std::atomic<uint64_t> progress{0};  // bytes moved so far (written by the pump)
};

struct PumpOutcome {
  uint64_t bytes = 0;      // enqueued, or dequeued and checked
  bool peer_gone = false;  // ended at QUEUEPAIR_NOTATTACHED
  bool abandoned = false;
  std::string error;       // empty unless something was wrong
  bool ok() const { return error.empty(); }
};

// The largest chunk either pump moves in one call.
inline constexpr size_t kMaxPumpChunk = 96 * 1024;

// Enqueues the stream for `seed` until control.stop or control.abandon.
PumpOutcome pump_out(QueuePair& qp, uint64_t seed, uint64_t chunk_seed, PumpControl& control);

// Dequeues and checks the stream for `seed` until control.target bytes were
// read. Once the target is known, no progress for `stall_seconds` is an error.
PumpOutcome pump_in(QueuePair& qp, uint64_t seed, uint64_t chunk_seed, PumpControl& control,
                    int stall_seconds = 30);

}  // namespace vmci::soak
