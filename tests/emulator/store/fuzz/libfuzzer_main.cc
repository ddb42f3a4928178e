// libFuzzer entry point (built with clang -fsanitize=fuzzer,address).
#include "decoder_fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return arrow_zerobus::emulator::fuzz::FuzzOne(data, size);
}
