// Exact decimal text for Arrow decimal32/64/128/256 values, without heap allocation.
#pragma once

#include <cstdint>

namespace arrow_zerobus::encode_internal {

// The digits of a decimal's unscaled integer (at most 77 for decimal256).
struct DecimalDigits {
  static constexpr int kCapacity = 80;
  char digits[kCapacity];  // the digits occupy [digits + kCapacity - count, digits + kCapacity)
  int count = 0;
  bool negative = false;

  const char* begin() const { return digits + kCapacity - count; }
  bool is_zero() const { return count == 1 && digits[kCapacity - 1] == '0'; }
};

// `words`: the two's complement unscaled value as `num_words` little-endian 64-bit words
// (1, 2 or 4).
void DecimalToDigits(const uint64_t* words, int num_words, DecimalDigits* out);

// Length of the canonical text: sign, integer part, and exactly `scale` digits after the point
// when scale > 0; a negative scale appends -scale zeros (never for zero itself).
int64_t DecimalTextSize(const DecimalDigits& d, int32_t scale);
// Writes exactly DecimalTextSize(d, scale) bytes.
uint8_t* WriteDecimalText(const DecimalDigits& d, int32_t scale, uint8_t* out);

}  // namespace arrow_zerobus::encode_internal
