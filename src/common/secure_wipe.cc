#include "common/secure_wipe_internal.h"

#include <openssl/crypto.h>

namespace arrow_zerobus::internal {

void SecureWipe(std::string* s) {
  // Growing to the capacity never reallocates and makes the spare bytes part of the string, so
  // they can be overwritten without writing past size().
  s->resize(s->capacity());
  OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

}  // namespace arrow_zerobus::internal
