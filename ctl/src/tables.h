// tables.h: an introspection snapshot as the tables vmci-ctl prints, one
// per view; columns aligned, sizes in binary units, ages as 1h02m.
//
//   std::cout << render(snapshot, View::kPairs);
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vmci/introspection.h"

namespace vmci::ctl {

enum class View { kStatus, kContexts, kPairs, kDoorbells, kHandles, kSubscriptions };

// "status", "contexts", ... -> the view; nullopt for another word.
std::optional<View> view_from_name(std::string_view name);
std::string_view view_name(View view);

std::string render(const Introspection& snapshot, View view);

// 1536 -> "1.5 KiB"; 7 -> "7 B".
std::string bytes_text(uint64_t bytes);
// 3725000 -> "1h02m"; 65000 -> "1m05s"; 4000 -> "4s".
std::string age_text(int64_t milliseconds);

}  // namespace vmci::ctl
