// The C++ helpers a proxy uses without the rest of the library, built
// against an installed tree: handles as map keys (vmci/handle.h),
// datagrams built and read without casts (vmci/message.h), and the Stats
// type (vmci/stats.h). Exits 0 when every check holds, else 1 with why.
#include <vmci/handle.h>
#include <vmci/message.h>
#include <vmci/stats.h>

#include <cstdio>
#include <map>
#include <string>
#include <unordered_set>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "helpers: %s\n", what);
    ++failures;
  }
}

}  // namespace

int main() {
  const vmci_handle a = VMCI_MAKE_HANDLE(16, 1), b = VMCI_MAKE_HANDLE(16, 2);
  const vmci_handle c = VMCI_MAKE_HANDLE(2, 9);
  std::unordered_set<vmci_handle> seen{a, b, a};
  std::map<vmci_handle, std::string> names{{b, "b"}, {a, "a"}, {c, "c"}};
  check(seen.size() == 2, "std::hash and == of vmci_handle");
  check(names.begin()->second == "c" && a < b && !(b < a), "< orders by context, then resource");

  vmci::PayloadWriter w;
  w.u32(7).handle(a).text("hi");
  vmci::Datagram dg(b, a, w.bytes());
  check(dg.get()->payload_size == 4 + 8 + 2, "the datagram's payload size");
  vmci::PayloadReader r = vmci::DatagramView(dg.get()).reader();
  const auto seven = r.u32();
  const auto handle = r.handle();
  check(seven && *seven == 7, "u32 read back");
  check(handle && *handle == a, "handle read back");
  check(r.remaining() == 2 && !r.u64(), "a read past the end gives nothing");

  vmci::Stats stats;
  stats.queue_pairs = 3;
  check(stats.queue_pairs == 3 && stats.guest_contexts == 0, "vmci::Stats");
  if (failures == 0) std::printf("helpers: handle, message and stats work as installed\n");
  return failures == 0 ? 0 : 1;
}
