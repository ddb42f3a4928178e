// SHA-256 (OpenSSL), used to key the token cache by a hash of the client secret so the cache
// never holds a secret as a key.
#pragma once

#include <string>
#include <string_view>

#include <arrow/result.h>

namespace arrow_zerobus::internal {

// Lower-case hex digest. Fails only when OpenSSL cannot run the digest (no memory, or a
// provider configuration without SHA-256).
arrow::Result<std::string> Sha256Hex(std::string_view data);

}  // namespace arrow_zerobus::internal
