#include "record/trace_reader.h"

#include <fstream>

namespace vmci::scenario {

bool read_traces(const std::vector<std::string>& files, std::vector<TraceLine>* lines,
                 std::string* error) {
  for (const std::string& file : files) {
    std::ifstream in(file);
    if (!in) {
      *error = file + ": cannot be read";
      return false;
    }
    std::string text;
    for (size_t number = 1; std::getline(in, text); ++number) {
      if (text.empty()) continue;
      TraceLine line;
      line.where = file + ":" + std::to_string(number);
      line.fields = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      const auto& f = line.fields;
      if (!f.is_object() || !f.contains("t") || !f["t"].is_number_unsigned() ||
          !f.contains("kind") || !f["kind"].is_string()) {
        *error = line.where + ": not a trace line (a JSON object with \"t\" and \"kind\")";
        return false;
      }
      line.t = f["t"].get<uint64_t>();
      line.from_hostpeer = f.contains("hostpeer");
      if (!line.from_hostpeer && !(f.contains("ep") && f["ep"].is_string())) {
        *error = line.where + ": an endpoint's line without \"ep\"";
        return false;
      }
      lines->push_back(std::move(line));
    }
  }
  return true;
}

}  // namespace vmci::scenario
