// Overwriting secrets in memory before it is freed or reused.
#pragma once

#include <string>

namespace arrow_zerobus::internal {

// Zeroes the whole buffer of `s` (capacity, not just size: a moved-from or cleared string still
// holds the old bytes) and empties it. OPENSSL_cleanse, so the stores are never optimised away.
void SecureWipe(std::string* s);

}  // namespace arrow_zerobus::internal
