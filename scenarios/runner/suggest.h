// suggest.h: "did you mean" for a misspelt name, by edit distance against
// the names that are known.
//
//   did_you_mean("datagram_sned", {"datagram_send", "datagram_create_handle"})
//     == " (did you mean 'datagram_send'?)"
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vmci::scenario {

// The Levenshtein distance between `a` and `b` (insertions, deletions and
// substitutions of one byte each count 1).
size_t edit_distance(std::string_view a, std::string_view b);

// " (did you mean 'NAME'?)" for the known name nearest to `name`, when it
// is near enough to be a slip (at most 2 edits, and at most a third of the
// name's length for short names); else the empty string. Ties go to the
// first in `known`.
std::string did_you_mean(std::string_view name, const std::vector<std::string>& known);

}  // namespace vmci::scenario
