// errno_names.h: errno values by the names scenarios write ("ECONNRESET"),
// as the C library of this machine defines them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vmci::scenario {

// The errno value named `name`, or nullopt for a name the C library does
// not know.
std::optional<int> errno_from_name(std::string_view name);
// The name of errno value `value` ("ECONNRESET"), or "errno N".
std::string errno_name(int value);

}  // namespace vmci::scenario
