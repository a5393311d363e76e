// pci_device_fuzzer: the VMCI PCI device as a hostile guest kernel drives
// it: config-space and BAR accesses of any address, size and value
// (through PciFunction, which routes them to the VMCI register model), DMA
// buffers full of whatever the guest wrote into its RAM, the notify bitmap
// hypercall with any page, and deliveries and doorbells from hostpeer's
// side in between. The hypervisor answers every datagram with a result the
// input chooses. After every step nothing may crash or hang; at the end
// every delivery is either taken (acknowledged once) or still pending.
//
// Input: operations until the input ends, a one-byte opcode (byte % 10)
// and its little-endian arguments (missing bytes read as zero):
//   0 config read      addr:u8 len:u8
//   1 config write     addr:u8 value:u32 len:u8
//   2 BAR read         bar:u8 offset:u32 size:u8
//   3 BAR write        bar:u8 offset:u32 value:u64 size:u8
//   4 deliver          size:u16 (a datagram of that payload, up to the max)
//   5 doorbells rung   count:u8, then count indexes (u16)
//   6 guest RAM write  gpa:u32 len:u8, then len bytes
//   7 reset            -
//   8 guest RAM map    kind:u8 (0: none, 1: all, 2: half, 3: two regions)
//   9 hypervisor's next answer  result:i32
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "guest_memory.h"
#include "pci_function.h"
#include "vmci/proto/datagram.h"
#include "vmci_device.h"

namespace {

using namespace vmci::pcidev;

constexpr uint64_t kRam = 1 << 20;

struct Input {
  const uint8_t* data;
  size_t size;
  size_t at = 0;
  bool done() const { return at >= size; }
  template <typename T>
  T take() {
    T value{};
    uint8_t bytes[sizeof(T)] = {};
    for (size_t i = 0; i < sizeof(T) && at < size; ++i) bytes[i] = data[at++];
    std::memcpy(&value, bytes, sizeof value);
    return value;
  }
};

struct FuzzHypervisor : Hypervisor {
  int64_t answer = 0;
  std::set<uint32_t> taken_ids;
  int64_t send(std::span<const uint8_t> datagram) override {
    if (datagram.size() < sizeof(vmci_datagram)) std::abort();  // the device checks first
    return answer;
  }
  void taken(uint32_t id) override {
    if (!taken_ids.insert(id).second) std::abort();  // taken twice
  }
};

struct NullSink : InterruptSink {
  void send_msi(uint64_t, uint32_t) override {}
  void set_intx(bool) override {}
};

struct Line : InterruptLine {
  PciFunction* pci = nullptr;
  void raise(uint32_t vector) override {
    if (vector > 2) std::abort();
    if (pci != nullptr) pci->raise_interrupt(vector);
  }
};

std::vector<SysmemRegion> layout(int kind, int ram_fd) {
  std::vector<SysmemRegion> regions;
  auto region = [&](uint64_t gpa, uint64_t size, int64_t offset) {
    regions.push_back({gpa, size, offset, UniqueFd(::dup(ram_fd))});
  };
  switch (kind % 4) {
    case 1:
      region(0, kRam, 0);
      break;
    case 2:
      region(0, kRam / 2, 0);
      break;
    case 3:
      region(0, kRam / 2, 0);
      region(kRam, kRam / 2, kRam / 2);
      break;
    default:
      break;
  }
  return regions;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int ram_fd = [] {
    const int fd = ::memfd_create("fuzz-ram", MFD_CLOEXEC);
    if (fd < 0 || ::ftruncate(fd, kRam) != 0) std::abort();
    return fd;
  }();
  static const auto log =
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  // A fresh, zeroed RAM each input.
  if (::ftruncate(ram_fd, 0) != 0 || ::ftruncate(ram_fd, kRam) != 0) std::abort();

  GuestMemory memory;
  memory.replace(layout(1, ram_fd));
  FuzzHypervisor hypervisor;
  Line line;
  NullSink sink;
  VmciDevice device(memory, hypervisor, line, log);
  PciFunction pci(device, sink, log);
  line.pci = &pci;

  Input in{data, size};
  uint32_t next_delivery = 1;
  while (!in.done()) {
    switch (in.take<uint8_t>() % 10) {
      case 0: {
        const auto addr = in.take<uint8_t>();
        pci.config_read(addr, in.take<uint8_t>() % 5);
        break;
      }
      case 1: {
        const auto addr = in.take<uint8_t>();
        const auto value = in.take<uint32_t>();
        pci.config_write(addr, value, in.take<uint8_t>() % 5);
        break;
      }
      case 2: {
        const int bar = in.take<uint8_t>() % 2;
        const uint64_t address = pci.bar_address(bar) + in.take<uint32_t>();
        pci.bar_read(address, in.take<uint8_t>() % 9, bar == 1);
        break;
      }
      case 3: {
        const int bar = in.take<uint8_t>() % 2;
        const uint64_t address = pci.bar_address(bar) + in.take<uint32_t>();
        const auto value = in.take<uint64_t>();
        pci.bar_write(address, value, in.take<uint8_t>() % 9, bar == 1);
        break;
      }
      case 4: {
        const size_t payload = in.take<uint16_t>() % (VMCI_MAX_DG_PAYLOAD_SIZE + 1);
        std::vector<uint8_t> bytes(payload, 0x5a);
        device.deliver(next_delivery++,
                       vmci::proto::make_datagram(VMCI_MAKE_HANDLE(16, 1), VMCI_MAKE_HANDLE(2, 1),
                                                  bytes));
        break;
      }
      case 5: {
        std::vector<uint32_t> indexes(in.take<uint8_t>() % 16);
        for (auto& index : indexes) index = in.take<uint16_t>();
        device.notify_indexes(indexes);
        break;
      }
      case 6: {
        const uint64_t gpa = in.take<uint32_t>() % (kRam + 4096);
        std::vector<uint8_t> bytes(in.take<uint8_t>());
        for (auto& b : bytes) b = in.take<uint8_t>();
        if (!bytes.empty()) memory.write(gpa, bytes.data(), bytes.size());
        break;
      }
      case 7:
        pci.reset();
        break;
      case 8:
        memory.replace(layout(in.take<uint8_t>(), ram_fd));
        break;
      case 9:
        hypervisor.answer = in.take<int32_t>();
        break;
    }
  }
  // Every delivery is accounted for: taken once, or still waiting.
  if (hypervisor.taken_ids.size() + device.pending_datagrams() != next_delivery - 1) std::abort();
  return 0;
}
