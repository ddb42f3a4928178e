// One fuzz input through the emulator's decoders. Shared by the libFuzzer executable (clang,
// -fsanitize=fuzzer,address) and the seeded mutation test that runs in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace arrow_zerobus::emulator::fuzz {

// Input: byte 0 picks the mode (proto records / JSON records / descriptor + records); the rest
// is a sequence of records, each a 2-byte little-endian length and that many bytes.
// Aborts when an invariant breaks (a decoded batch that does not validate, a table made from a
// descriptor that the descriptor does not match); otherwise returns 0.
int FuzzOne(const uint8_t* data, size_t size);

}  // namespace arrow_zerobus::emulator::fuzz
