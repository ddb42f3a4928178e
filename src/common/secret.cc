#include "arrow_zerobus/secret.h"

#include <ostream>

#include "common/secure_wipe_internal.h"

namespace arrow_zerobus {

SecretString::SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) {
  other.Wipe();
}

SecretString& SecretString::operator=(const SecretString& other) {
  if (this != &other) {
    Wipe();
    value_ = other.value_;
  }
  return *this;
}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    Wipe();
    value_ = std::move(other.value_);
    other.Wipe();
  }
  return *this;
}

SecretString::~SecretString() { Wipe(); }

void SecretString::Wipe() { internal::SecureWipe(&value_); }

std::ostream& operator<<(std::ostream& os, const SecretString& secret) {
  return os << secret.ToString();
}

}  // namespace arrow_zerobus
