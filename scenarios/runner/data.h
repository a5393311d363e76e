// data.h: the scenario format's data values: text, hex, base64, zeros or a
// pattern, decoded and compared without holding a pattern whole.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pattern.h"

namespace vmci::scenario {

struct Data {
  enum class Kind { kBytes, kZeros, kPattern };
  Kind kind = Kind::kBytes;
  std::vector<uint8_t> bytes;  // kBytes
  uint64_t length = 0;         // kZeros, kPattern
  uint64_t seed = 0;           // kPattern
  uint64_t offset = 0;         // kPattern

  uint64_t size() const { return kind == Kind::kBytes ? bytes.size() : length; }
  // Bytes start .. start+n-1 of this data.
  void copy(uint64_t start, uint8_t* out, size_t n) const;
  std::vector<uint8_t> materialize() const;
  // "pattern seed 7" / "12 bytes of text"-style description for reports.
  std::string describe() const;
};

struct Mismatch {
  uint64_t offset;  // first differing offset, or the shorter length
  std::string message;
};

// Compares `actual` with bytes start .. of `expected`; nullopt if equal.
// With check_length, a different total length is a mismatch too.
std::optional<Mismatch> compare(const Data& expected, std::span<const uint8_t> actual,
                                uint64_t start = 0, bool check_length = true);

// Typed fields, as a payload's `fields` and a step's `capture` name them:
// "u8", "u16", "u32", "u64" (little-endian) and "handle" (a vmci_handle:
// context then resource, each a little-endian u32). The width in bytes, or
// nullopt for another name.
std::optional<size_t> field_width(std::string_view type);
// Appends the low `width` bytes of `value`, little-endian.
void put_le(std::vector<uint8_t>* out, uint64_t value, size_t width);
// The little-endian integer of `bytes` (at most 8 of them).
uint64_t get_le(std::span<const uint8_t> bytes);

// Decoders; false with *error set on bad input.
bool decode_hex(const std::string& hex, std::vector<uint8_t>* out, std::string* error);
bool decode_base64(const std::string& text, std::vector<uint8_t>* out, std::string* error);

}  // namespace vmci::scenario
