#include "encode/decimal_text.h"

#include <cstring>

namespace arrow_zerobus::encode_internal {

namespace {

constexpr uint64_t kTen19 = 10000000000000000000ULL;

// Writes the decimal digits of v ending at `end`, at least `min_digits` (zero-padded).
char* WriteDigitsBackwards(uint64_t v, int min_digits, char* end) {
  int written = 0;
  do {
    *--end = static_cast<char>('0' + v % 10);
    v /= 10;
    ++written;
  } while (v != 0);
  while (written < min_digits) {
    *--end = '0';
    ++written;
  }
  return end;
}

}  // namespace

void DecimalToDigits(const uint64_t* words, int num_words, DecimalDigits* out) {
  uint64_t mag[4] = {0, 0, 0, 0};
  for (int i = 0; i < num_words; ++i) mag[i] = words[i];
  out->negative = (words[num_words - 1] >> 63) != 0;
  if (out->negative) {
    // Two's complement negation: invert and add one, carrying across the words.
    uint64_t carry = 1;
    for (int i = 0; i < num_words; ++i) {
      mag[i] = ~mag[i] + carry;
      carry = (carry != 0 && mag[i] == 0) ? 1 : 0;
    }
  }
  char* const end = out->digits + DecimalDigits::kCapacity;
  char* p = end;
  int top = num_words - 1;
  while (top > 0 && mag[top] == 0) --top;
  // Peel off base-10^19 chunks from the least significant end until one word is left.
  while (top > 0) {
    unsigned __int128 rem = 0;
    for (int i = top; i >= 0; --i) {
      const unsigned __int128 cur = (rem << 64) | mag[i];
      mag[i] = static_cast<uint64_t>(cur / kTen19);
      rem = cur % kTen19;
    }
    p = WriteDigitsBackwards(static_cast<uint64_t>(rem), 19, p);
    while (top > 0 && mag[top] == 0) --top;
  }
  p = WriteDigitsBackwards(mag[0], 1, p);
  // Padding inside chunks can leave leading zeros; keep at least one digit.
  while (p < end - 1 && *p == '0') ++p;
  out->count = static_cast<int>(end - p);
  if (out->is_zero()) out->negative = false;  // no "-0"
}

int64_t DecimalTextSize(const DecimalDigits& d, int32_t scale) {
  const int64_t sign = d.negative ? 1 : 0;
  if (scale <= 0) return sign + d.count + (d.is_zero() ? 0 : -static_cast<int64_t>(scale));
  if (d.count <= scale) return sign + 2 + scale;  // "0." then scale digits
  return sign + d.count + 1;
}

uint8_t* WriteDecimalText(const DecimalDigits& d, int32_t scale, uint8_t* out) {
  if (d.negative) *out++ = '-';
  const char* digits = d.begin();
  if (scale <= 0) {
    std::memcpy(out, digits, static_cast<size_t>(d.count));
    out += d.count;
    if (!d.is_zero() && scale < 0) {
      std::memset(out, '0', static_cast<size_t>(-static_cast<int64_t>(scale)));
      out += -static_cast<int64_t>(scale);
    }
    return out;
  }
  if (d.count <= scale) {
    *out++ = '0';
    *out++ = '.';
    const int64_t zeros = scale - d.count;
    std::memset(out, '0', static_cast<size_t>(zeros));
    out += zeros;
    std::memcpy(out, digits, static_cast<size_t>(d.count));
    return out + d.count;
  }
  const int int_digits = d.count - scale;
  std::memcpy(out, digits, static_cast<size_t>(int_digits));
  out += int_digits;
  *out++ = '.';
  std::memcpy(out, digits + int_digits, static_cast<size_t>(scale));
  return out + scale;
}

}  // namespace arrow_zerobus::encode_internal
