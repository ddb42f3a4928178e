// SHA-256 (FIPS 180-4), used to key the token cache by a hash of the client secret so the
// cache never holds a secret as a key.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace arrow_zerobus::internal {

std::array<uint8_t, 32> Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);

}  // namespace arrow_zerobus::internal
