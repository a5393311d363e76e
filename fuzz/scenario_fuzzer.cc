// scenario_fuzzer: the scenario loader (scenarios/runner/loader.h) over
// arbitrary text. A file that breaks the format must be refused with a
// path and a message; nothing may crash or hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runner/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  vmci::scenario::LoadError error;
  const auto scenario = vmci::scenario::parse_scenario("fuzz.json", text, &error);
  if (!scenario && (error.path.empty() || error.message.empty())) __builtin_trap();
  return 0;
}
