// The encoder's wire primitives and decimal text, against straightforward references.
#include <cstring>
#include <random>
#include <string>

#include <arrow/util/decimal.h>
#include <gtest/gtest.h>

#include "encode/decimal_text.h"
#include "encode/wire_internal.h"

namespace arrow_zerobus::encode_internal {
namespace {

std::string ReferenceVarint(uint64_t v) {
  std::string out;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v != 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v != 0);
  return out;
}

TEST(Wire, VarintEveryLengthAndBoundary) {
  std::mt19937_64 rng(5);
  std::vector<uint64_t> values = {0, 1, 127, 128, 16383, 16384, UINT64_MAX, uint64_t{1} << 63};
  for (int bits = 1; bits <= 64; ++bits) {
    const uint64_t top = bits == 64 ? UINT64_MAX : (uint64_t{1} << bits) - 1;
    values.push_back(top);
    values.push_back(top >> 1);
    values.push_back((top >> 1) + 1);
    for (int i = 0; i < 20; ++i) values.push_back(rng() & top);
  }
  for (uint64_t v : values) {
    const std::string expected = ReferenceVarint(v);
    EXPECT_EQ(VarintSize(v), static_cast<int64_t>(expected.size())) << v;
    // Guard bytes around the output prove nothing outside the varint is touched.
    uint8_t buf[32];
    std::memset(buf, 0xEE, sizeof(buf));
    uint8_t* end = WriteVarint(buf + 8, v);
    ASSERT_EQ(end - (buf + 8), static_cast<int64_t>(expected.size())) << v;
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf + 8), expected.size()), expected) << v;
    for (int i = 0; i < 8; ++i) EXPECT_EQ(buf[i], 0xEE);
    for (uint8_t* p = end; p < buf + sizeof(buf); ++p) EXPECT_EQ(*p, 0xEE) << v;
  }
}

TEST(Wire, ZigZag) {
  EXPECT_EQ(ZigZag64(0), 0u);
  EXPECT_EQ(ZigZag64(-1), 1u);
  EXPECT_EQ(ZigZag64(1), 2u);
  EXPECT_EQ(ZigZag64(-2), 3u);
  EXPECT_EQ(ZigZag64(INT64_MAX), UINT64_MAX - 1);
  EXPECT_EQ(ZigZag64(INT64_MIN), UINT64_MAX);
}

TEST(Wire, TagBytes) {
  EXPECT_EQ(Tag::Make(1, kVarint).len, 1);
  EXPECT_EQ(Tag::Make(1, kVarint).bytes, 0x08u);
  EXPECT_EQ(Tag::Make(15, kLengthDelimited).len, 1);
  EXPECT_EQ(Tag::Make(16, kFixed64).len, 2);
  EXPECT_EQ(Tag::Make(2047, kFixed32).len, 2);
  EXPECT_EQ(Tag::Make(2048, kVarint).len, 3);
  EXPECT_EQ(Tag::Make(536870911, kVarint).len, 5);
  for (int32_t number : {1, 15, 16, 2047, 2048, 262143, 262144, 536870911}) {
    const Tag tag = Tag::Make(number, kLengthDelimited);
    uint8_t buf[8] = {0};
    EXPECT_EQ(tag.Write(buf) - buf, tag.len);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), static_cast<size_t>(tag.len)),
              ReferenceVarint((static_cast<uint64_t>(number) << 3) | 2));
  }
}

TEST(Wire, CopyBytesTouchesExactlyTheRange) {
  std::string src(64, ' ');
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>('A' + i % 26);
  for (size_t n = 0; n <= 40; ++n) {
    uint8_t buf[64];
    std::memset(buf, 0xEE, sizeof(buf));
    uint8_t* end = CopyBytes(buf + 4, src.data(), n);
    ASSERT_EQ(end, buf + 4 + n);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf + 4), n), src.substr(0, n));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(buf[i], 0xEE);
    for (uint8_t* p = end; p < buf + sizeof(buf); ++p) EXPECT_EQ(*p, 0xEE) << n;
  }
}

std::string Text(const arrow::Decimal256& value, int32_t scale) {
  DecimalDigits d;
  DecimalToDigits(reinterpret_cast<const uint64_t*>(value.native_endian_bytes()), 4, &d);
  std::string out(static_cast<size_t>(DecimalTextSize(d, scale)), '?');
  uint8_t* end = WriteDecimalText(d, scale, reinterpret_cast<uint8_t*>(out.data()));
  EXPECT_EQ(end - reinterpret_cast<uint8_t*>(out.data()), static_cast<int64_t>(out.size()));
  return out;
}

TEST(DecimalText, Canonical) {
  auto dec = [](const char* s) { return arrow::Decimal256::FromString(s).ValueOrDie(); };
  EXPECT_EQ(Text(dec("-1234500"), 4), "-123.4500");
  EXPECT_EQ(Text(dec("5"), 2), "0.05");
  EXPECT_EQ(Text(dec("-5"), 2), "-0.05");
  EXPECT_EQ(Text(dec("0"), 3), "0.000");
  EXPECT_EQ(Text(dec("0"), 0), "0");
  EXPECT_EQ(Text(dec("0"), -2), "0");
  EXPECT_EQ(Text(dec("123"), 0), "123");
  EXPECT_EQ(Text(dec("123"), 3), "0.123");
  EXPECT_EQ(Text(dec("-123"), -2), "-12300");
  EXPECT_EQ(Text(dec("10000000000000000000"), 19), "1.0000000000000000000");  // 10^19 chunk edge
  EXPECT_EQ(Text(dec("9999999999999999999999999999999999999999999999999999999999999999999999999999"), 76),
            "0.9999999999999999999999999999999999999999999999999999999999999999999999999999");
  EXPECT_EQ(Text(dec("-9999999999999999999999999999999999999999999999999999999999999999999999999999"), 0),
            "-9999999999999999999999999999999999999999999999999999999999999999999999999999");
}

TEST(DecimalText, NarrowWidthsAndExtremes) {
  // decimal128 minimum: two's complement negation must carry across words.
  const arrow::Decimal128 min128 = arrow::Decimal128::GetMinSentinel();
  DecimalDigits d;
  DecimalToDigits(reinterpret_cast<const uint64_t*>(min128.native_endian_bytes()), 2, &d);
  std::string out(static_cast<size_t>(DecimalTextSize(d, 0)), '?');
  WriteDecimalText(d, 0, reinterpret_cast<uint8_t*>(out.data()));
  EXPECT_EQ(out, "-170141183460469231731687303715884105728");
  const uint64_t word = static_cast<uint64_t>(int64_t{INT64_MIN});
  DecimalToDigits(&word, 1, &d);
  out.assign(static_cast<size_t>(DecimalTextSize(d, 3)), '?');
  WriteDecimalText(d, 3, reinterpret_cast<uint8_t*>(out.data()));
  EXPECT_EQ(out, "-9223372036854775.808");
}

}  // namespace
}  // namespace arrow_zerobus::encode_internal
