// The encode module's wire interface to the other modules: the protobuf varint writer (the
// transport frames requests and Flight messages with it, the wrapper frames JSON rows) and the
// one request-size rule (the encoder chunks by it, the stream admits by it). Header-only so it
// inlines; the encoder's other wire primitives stay in encode/wire_internal.h.
#pragma once

#include <bit>
#include <cstdint>

// The hot loops depend on these being inlined; GCC sometimes declines inside big templates.
#define AZ_ALWAYS_INLINE inline __attribute__((always_inline))

namespace arrow_zerobus::encode_internal {

// Bytes of the base-128 varint of v: 1 + floor(log2(v) / 7), computed without a loop.
AZ_ALWAYS_INLINE int64_t VarintSize(uint64_t v) {
  const int bits = 64 - std::countl_zero(v | 1);
  return (bits * 9 + 64) / 64;
}

AZ_ALWAYS_INLINE uint8_t* WriteVarint(uint8_t* out, uint64_t v) {
  // A plain byte loop: measured no slower than register tricks here, and its branch is
  // predictable for a column whose values have similar magnitudes.
  while (v >= 0x80) {
    *out++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<uint8_t>(v);
  return out;
}

// Bytes of one whole EphemeralStreamRequest{ingest_record_batch{offset_id, <payload>}} whose
// payload (the framed records) takes `payload` bytes, with offset_id at its widest (a 10-byte
// varint). The one request-size rule: the encoder chunks by it and the stream admits by it.
inline int64_t IngestRequestSize(int64_t payload) {
  const auto v = [](int64_t x) { return static_cast<int64_t>(VarintSize(static_cast<uint64_t>(x))); };
  const int64_t batch = 1 + v(payload) + payload;  // field 2: the records
  const int64_t ingest = 1 + 10 + batch;           // field 1: offset_id
  return 1 + v(ingest) + ingest;                   // field 3 of the request
}

}  // namespace arrow_zerobus::encode_internal
