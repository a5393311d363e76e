#include "data.h"

#include <algorithm>
#include <cstring>

namespace vmci::scenario {

void Data::copy(uint64_t start, uint8_t* out, size_t n) const {
  if (n == 0) return;
  switch (kind) {
    case Kind::kBytes:
      std::memcpy(out, bytes.data() + start, n);
      break;
    case Kind::kZeros:
      std::memset(out, 0, n);
      break;
    case Kind::kPattern:
      PatternStream(seed).fill(offset + start, out, n);
      break;
  }
}

std::vector<uint8_t> Data::materialize() const {
  std::vector<uint8_t> out(size());
  copy(0, out.data(), out.size());
  return out;
}

std::string Data::describe() const {
  switch (kind) {
    case Kind::kBytes:
      return std::to_string(bytes.size()) + " bytes";
    case Kind::kZeros:
      return std::to_string(length) + " zero bytes";
    case Kind::kPattern:
      return std::to_string(length) + " bytes of pattern seed " + std::to_string(seed) +
             " from offset " + std::to_string(offset);
  }
  return {};
}

std::optional<Mismatch> compare(const Data& expected, std::span<const uint8_t> actual,
                                uint64_t start, bool check_length) {
  const uint64_t available = expected.size() > start ? expected.size() - start : 0;
  const uint64_t common = std::min<uint64_t>(available, actual.size());
  uint8_t chunk[4096];
  for (uint64_t done = 0; done < common;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof chunk, common - done));
    expected.copy(start + done, chunk, n);
    for (size_t i = 0; i < n; ++i) {
      if (chunk[i] != actual[done + i]) {
        char text[96];
        std::snprintf(
            text, sizeof text, "first difference at offset %llu: expected 0x%02x, got 0x%02x",
            static_cast<unsigned long long>(start + done + i), chunk[i], actual[done + i]);
        std::string message = text;
        if (expected.kind == Data::Kind::kPattern) {
          message += " (pattern seed " + std::to_string(expected.seed) + ")";
        }
        return Mismatch{start + done + i, message};
      }
    }
    done += n;
  }
  if (actual.size() > available || (check_length && actual.size() != available)) {
    return Mismatch{start + common, "expected " + std::to_string(available) + " bytes, got " +
                                        std::to_string(actual.size())};
  }
  return std::nullopt;
}

bool decode_hex(const std::string& hex, std::vector<uint8_t>* out, std::string* error) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    *error = "hex data has an odd number of digits";
    return false;
  }
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      *error = "hex data has a non-hex character at position " + std::to_string(hi < 0 ? i : i + 1);
      return false;
    }
    out->push_back(static_cast<uint8_t>(hi * 16 + lo));
  }
  return true;
}

bool decode_base64(const std::string& text, std::vector<uint8_t>* out, std::string* error) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) {
    *error = "base64 data is not a multiple of 4 characters";
    return false;
  }
  out->clear();
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else if (pad > 0 || (v[j] = value(c)) < 0) {
        *error = "base64 data has an invalid character at position " + std::to_string(i + j);
        return false;
      }
    }
    const uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<uint8_t>(n >> 16));
    if (pad < 2) out->push_back(static_cast<uint8_t>(n >> 8));
    if (pad < 1) out->push_back(static_cast<uint8_t>(n));
  }
  return true;
}

std::optional<size_t> field_width(std::string_view type) {
  if (type == "u8") return 1;
  if (type == "u16") return 2;
  if (type == "u32") return 4;
  if (type == "u64" || type == "handle") return 8;
  return std::nullopt;
}

void put_le(std::vector<uint8_t>* out, uint64_t value, size_t width) {
  for (size_t i = 0; i < width; ++i) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t get_le(std::span<const uint8_t> bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) value |= uint64_t{bytes[i]} << (8 * i);
  return value;
}

}  // namespace vmci::scenario
