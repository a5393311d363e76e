#include "record/trace_reader.h"

#include <fstream>

#include "runner/data.h"
#include "vmci/trace/trace_file.h"

namespace vmci::scenario {

bool base64_from_hex_fields(nlohmann::json* fields, std::string* error) {
  for (const char* key : {"data", "payload"}) {
    const std::string base64_key = std::string(key) + "_base64";
    if (!fields->contains(key) || !(*fields)[key].is_string() || fields->contains(base64_key)) {
      continue;
    }
    std::vector<uint8_t> bytes;
    if (!decode_hex((*fields)[key].get<std::string>(), &bytes, error)) return false;
    (*fields)[base64_key] = trace::to_base64(bytes);
    fields->erase(key);
  }
  return true;
}

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
      if (!line.from_hostpeer && !base64_from_hex_fields(&line.fields, error)) {
        *error = line.where + ": " + *error;
        return false;
      }
      lines->push_back(std::move(line));
    }
  }
  return true;
}

}  // namespace vmci::scenario
