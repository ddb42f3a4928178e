// Reading the protobuf wire format by hand: base-128 varints, field keys, length-delimited
// fields, skipping a field by its wire type. One reader for the library's decoders (Flight
// replies, JSON rows), the emulator's (ingest fast path, FlightData, protobuf records) and the
// tests. Header-only and force-inlined: the emulator's record decoder calls it per field.
// Internal (not installed): include it as "common/proto_wire.h".
#pragma once

#include <cstdint>
#include <string_view>

#if defined(__GNUC__) || defined(__clang__)
#define AZ_WIRE_INLINE inline __attribute__((always_inline))
#define AZ_WIRE_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define AZ_WIRE_INLINE inline
#define AZ_WIRE_LIKELY(x) (x)
#endif

namespace arrow_zerobus::wire {

// Reads one varint at `p` (advanced past it); false when truncated or longer than 64 bits
// (more than 10 bytes, or a 10th byte above 1).
AZ_WIRE_INLINE bool ReadVarint(const uint8_t*& p, const uint8_t* end, uint64_t* out) {
  if (AZ_WIRE_LIKELY(p < end && *p < 0x80)) {  // most keys and small values: one byte
    *out = *p++;
    return true;
  }
  uint64_t result = 0;
  for (int i = 0; i < 10; ++i) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    if (i == 9 && b > 1) return false;
    result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = result;
      return true;
    }
  }
  return false;
}

// Reads a length-delimited payload at `p` (its length varint, then the bytes), a view into the
// input; false when the length is malformed or runs past `end`.
AZ_WIRE_INLINE bool ReadBytes(const uint8_t*& p, const uint8_t* end, std::string_view* out) {
  uint64_t len;
  if (!ReadVarint(p, end, &len) || len > static_cast<uint64_t>(end - p)) return false;
  *out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  p += len;
  return true;
}

// A cursor over the bytes of one message; `p` and `end` stay public for decoders that walk
// packed runs themselves.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;

  Reader(const uint8_t* begin, const uint8_t* stop) : p(begin), end(stop) {}
  explicit Reader(std::string_view s)
      : p(reinterpret_cast<const uint8_t*>(s.data())), end(p + s.size()) {}

  bool done() const { return p >= end; }

  AZ_WIRE_INLINE bool Varint(uint64_t* v) { return ReadVarint(p, end, v); }
  // A field key: protobuf refuses field number 0 and keys beyond 32 bits.
  AZ_WIRE_INLINE bool Tag(uint64_t* tag) {
    return Varint(tag) && *tag <= UINT32_MAX && (*tag >> 3) != 0;
  }
  // The payload of a length-delimited field.
  AZ_WIRE_INLINE bool Bytes(std::string_view* out) { return ReadBytes(p, end, out); }
  // Skips the value of a field nobody reads; false for groups (3, 4: not used by these
  // messages), invalid wire types and truncated values.
  AZ_WIRE_INLINE bool Skip(uint32_t wire_type) {
    uint64_t v;
    std::string_view b;
    switch (wire_type) {
      case 0: return Varint(&v);
      case 1: return Advance(8);
      case 2: return Bytes(&b);
      case 5: return Advance(4);
      default: return false;
    }
  }

 private:
  AZ_WIRE_INLINE bool Advance(size_t n) {
    if (static_cast<size_t>(end - p) < n) return false;
    p += n;
    return true;
  }
};

}  // namespace arrow_zerobus::wire

#undef AZ_WIRE_LIKELY
