// proxy_link.h: the socket between QEMU's x-pci-proxy-dev and this process.
//
// QEMU 7.2's multi-process protocol (checked against Debian's
// qemu 1:7.2+dfsg-7+deb12u18, hw/remote/mpqemu-link.c and
// include/hw/remote/mpqemu-link.h). Every message, both ways, is a 16-byte
// header, then `size` bytes of body; descriptors ride as SCM_RIGHTS on the
// header's bytes. All integers are the host's (x86-64, little-endian):
//
//   header       int32 cmd, 4 bytes padding, uint64 size
//   SYNC_SYSMEM  0  body 192: uint64 gpa[8], uint64 size[8], int64 offset[8];
//                   one fd per region (1..8); no reply
//   RET          1  body 8: uint64 value (what this process answers with)
//   PCI_CFGWRITE 2  body 12: uint32 addr, uint32 value, int32 len; reply RET
//   PCI_CFGREAD  3  body 12: as above (value 0); reply RET (the value read)
//   BAR_WRITE    4  body 24: uint64 addr, uint64 value, uint32 size,
//                   uint8 memory, 3 bytes padding; reply RET
//   BAR_READ     5  body 24: as above; reply RET (the value read)
//   SET_IRQFD    6  body 0; two fds: the INTx irqfd, its resample fd; no reply
//   DEVICE_RESET 7  body 0; reply RET
//
// A BAR access's addr is the BAR's current guest address plus the offset
// (I/O port space when memory is 0). QEMU's vCPU blocks on every request
// that wants a RET, so each one gets exactly one RET, even when it is
// malformed (then UINT64_MAX, as QEMU's own remote answers a bad request).
//
// Validation: the header is checked before the body is read (known command,
// body no larger than 192 bytes, at most 8 descriptors). A header that fails
// ends the link: the stream can no longer be trusted to be in step. A body
// of the wrong size or a wrong number of descriptors for its command is
// read, dropped (its descriptors closed), logged, and answered if it wanted
// an answer; the link goes on.
//
// Usage (one thread serves the link; handler calls come from that thread):
//
//   ProxyLink link(UniqueFd(fd_from_qemu), log);
//   MyHandler handler;                 // implements ProxyMessageHandler
//   LinkStatus end = link.serve(handler);   // until QEMU goes away
//   if (!end.ok()) log->error("proxy link: {}", end.message);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "unique_fd.h"

namespace spdlog {
class logger;
}

namespace vmci::pcidev {

enum class MpqemuCommand : int32_t {
  kSyncSysmem = 0,
  kRet = 1,
  kPciConfigWrite = 2,
  kPciConfigRead = 3,
  kBarWrite = 4,
  kBarRead = 5,
  kSetIrqfd = 6,
  kDeviceReset = 7,
};
const char* command_name(int32_t cmd);

struct MpqemuHeader {
  int32_t cmd;
  uint32_t pad;
  uint64_t size;
};
static_assert(sizeof(MpqemuHeader) == 16);

constexpr size_t kMpqemuMaxBody = 192;  // the largest body: SYNC_SYSMEM
constexpr size_t kMpqemuMaxFds = 8;     // REMOTE_MAX_FDS
constexpr size_t kSyncSysmemBodySize = 192;
constexpr size_t kConfigBodySize = 12;
constexpr size_t kBarBodySize = 24;
constexpr size_t kRetBodySize = 8;
constexpr uint64_t kRetError = UINT64_MAX;

// A config-space access. len is 1, 2 or 4 as QEMU sends it (not checked
// here: PciFunction refuses what it cannot do).
struct ConfigRead {
  uint32_t addr;
  uint32_t len;
};
struct ConfigWrite {
  uint32_t addr;
  uint32_t value;
  uint32_t len;
};
// A BAR access: addr is a guest address (port or memory), size in bytes.
struct BarRead {
  uint64_t addr;
  uint32_t size;
  bool memory;
};
struct BarWrite {
  uint64_t addr;
  uint64_t value;
  uint32_t size;
  bool memory;
};
// One guest RAM region: [gpa, gpa + size) is the file's bytes from offset.
struct SysmemRegion {
  uint64_t gpa;
  uint64_t size;
  int64_t offset;
  UniqueFd fd;
};
struct SyncSysmem {
  std::vector<SysmemRegion> regions;
};
struct SetIrqfd {
  UniqueFd irq;       // written (8-byte add) to assert INTx: KVM reads it, TCG never does
  UniqueFd resample;  // KVM signals it when the guest EOIs the level interrupt
};
struct DeviceReset {};
struct UnexpectedRet {  // QEMU never sends RET to a device; logged and dropped
  uint64_t value;
};

using ProxyMessage = std::variant<SyncSysmem, ConfigWrite, ConfigRead, BarWrite, BarRead,
                                  SetIrqfd, DeviceReset, UnexpectedRet>;

// Errors are values. ok() with an empty message; a failure says what and why.
struct LinkStatus {
  // kMalformed: a header that cannot be trusted, the link must end.
  // kRejected: one message dropped (bad body or descriptors); the link goes on.
  enum class Kind { kOk, kClosed, kMalformed, kRejected, kIoError };
  Kind kind = Kind::kOk;
  std::string message;
  bool ok() const { return kind == Kind::kOk; }
  static LinkStatus Ok() { return {}; }
  static LinkStatus Closed(std::string why) { return {Kind::kClosed, std::move(why)}; }
  static LinkStatus Malformed(std::string why) { return {Kind::kMalformed, std::move(why)}; }
  static LinkStatus Rejected(std::string why) { return {Kind::kRejected, std::move(why)}; }
  static LinkStatus IoError(std::string why) { return {Kind::kIoError, std::move(why)}; }
};

// Checks a header alone: ok, or Malformed (the link must end).
LinkStatus check_header(const MpqemuHeader& header, size_t fd_count);

// Whether a command makes QEMU wait for a RET.
bool wants_reply(int32_t cmd);

// Decodes a body whose header passed check_header. Takes the descriptors
// (they are closed if the message is refused). On a Rejected result,
// *message is untouched and the link may go on.
LinkStatus decode_message(const MpqemuHeader& header, std::span<const uint8_t> body,
                          std::vector<UniqueFd> fds, ProxyMessage* message);

// What the device does with each message. Called on the thread in serve().
class ProxyMessageHandler {
 public:
  virtual ~ProxyMessageHandler() = default;
  virtual uint64_t config_read(const ConfigRead& access) = 0;
  virtual void config_write(const ConfigWrite& access) = 0;
  virtual uint64_t bar_read(const BarRead& access) = 0;
  virtual void bar_write(const BarWrite& access) = 0;
  // Takes the region descriptors.
  virtual void sync_sysmem(SyncSysmem&& sysmem) = 0;
  virtual void set_irqfd(SetIrqfd&& irqfd) = 0;
  virtual void device_reset() = 0;
};

class ProxyLink {
 public:
  // Takes the socket QEMU holds the other end of (a SOCK_STREAM Unix
  // socket). `log` must outlive the link.
  ProxyLink(UniqueFd socket, std::shared_ptr<spdlog::logger> log);

  // Reads one message. Ok with *message set; Closed when QEMU closed the
  // socket between messages; Malformed for a bad header (end the link);
  // Rejected for a bad body or descriptors (the message is dropped and, if
  // it wanted a RET, answered kRetError already); IoError otherwise.
  LinkStatus read_message(ProxyMessage* message);

  // Sends RET carrying value.
  LinkStatus send_ret(uint64_t value);

  // Reads, dispatches and answers messages until the link ends; returns why
  // (Closed when QEMU went away cleanly).
  LinkStatus serve(ProxyMessageHandler& handler);

  // Handles one message that was read: calls the handler, sends the RET.
  LinkStatus dispatch(ProxyMessage&& message, ProxyMessageHandler& handler);

  // Makes a serve() in another thread return (shuts the socket down).
  void shut_down();

  int socket_fd() const { return socket_.get(); }

 private:
  // Reads exactly len bytes, collecting any descriptors that come with them.
  LinkStatus read_exact(void* buffer, size_t len, std::vector<UniqueFd>* fds, bool at_start);

  UniqueFd socket_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace vmci::pcidev
