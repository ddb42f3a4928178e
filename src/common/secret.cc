#include "arrow_zerobus/secret.h"

#include <ostream>

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

void SecretString::Wipe() {
  // volatile so the compiler cannot drop the stores as dead before deallocation.
  volatile char* p = value_.data();
  for (size_t i = 0; i < value_.size(); ++i) p[i] = 0;
  value_.clear();
}

std::ostream& operator<<(std::ostream& os, const SecretString& secret) {
  return os << secret.ToString();
}

}  // namespace arrow_zerobus
