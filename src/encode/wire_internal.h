// Protobuf wire-format primitives used by the encoder's hot loops. Header-only so they inline.
// The varint writer and the request-size rule, which other modules use too, are in
// encode/wire.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "encode/wire.h"

namespace arrow_zerobus::encode_internal {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

AZ_ALWAYS_INLINE uint64_t ZigZag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

AZ_ALWAYS_INLINE uint8_t* WriteFixed32(uint8_t* out, uint32_t v) {
  std::memcpy(out, &v, 4);  // protobuf is little-endian, like every target we build for
  return out + 4;
}

AZ_ALWAYS_INLINE uint8_t* WriteFixed64(uint8_t* out, uint64_t v) {
  std::memcpy(out, &v, 8);
  return out + 8;
}

// Copies exactly n bytes. Short values (most strings in rows) are copied with two overlapping
// loads/stores instead of a libc call; nothing outside [out, out + n) is touched, because the
// bytes after a field may already hold the next row.
AZ_ALWAYS_INLINE uint8_t* CopyBytes(uint8_t* out, const void* src, size_t n) {
  const auto* in = static_cast<const uint8_t*>(src);
  if (n >= 8 && n <= 16) {
    uint64_t head, tail;
    std::memcpy(&head, in, 8);
    std::memcpy(&tail, in + n - 8, 8);
    std::memcpy(out, &head, 8);
    std::memcpy(out + n - 8, &tail, 8);
  } else if (n >= 4 && n < 8) {
    uint32_t head, tail;
    std::memcpy(&head, in, 4);
    std::memcpy(&tail, in + n - 4, 4);
    std::memcpy(out, &head, 4);
    std::memcpy(out + n - 4, &tail, 4);
  } else if (n < 4) {
    for (size_t i = 0; i < n; ++i) out[i] = in[i];
  } else {
    std::memcpy(out, in, n);
  }
  return out + n;
}

// A field key (number << 3 | wire type) pre-encoded at plan time. len 0 means "no key": the
// elements of a packed repeated field.
struct Tag {
  uint64_t bytes = 0;  // the varint bytes, first byte lowest
  int32_t len = 0;

  static Tag Make(int32_t number, WireType wire) {
    Tag tag;
    uint8_t buf[10];
    const uint8_t* end = WriteVarint(buf, (static_cast<uint64_t>(number) << 3) | wire);
    tag.len = static_cast<int32_t>(end - buf);
    std::memcpy(&tag.bytes, buf, static_cast<size_t>(tag.len));
    return tag;
  }
  static Tag None() { return Tag(); }

  AZ_ALWAYS_INLINE uint8_t* Write(uint8_t* out) const {
    // Field numbers up to 15 (one byte) and 2047 (two) are the common cases.
    if (len == 1) {
      *out = static_cast<uint8_t>(bytes);
      return out + 1;
    }
    if (len == 2) {
      const uint16_t two = static_cast<uint16_t>(bytes);
      std::memcpy(out, &two, 2);
      return out + 2;
    }
    for (int32_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(bytes >> (8 * i));
    return out + len;
  }
};

}  // namespace arrow_zerobus::encode_internal
