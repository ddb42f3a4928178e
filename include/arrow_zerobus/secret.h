// SecretString: how the library holds a secret (the OAuth client secret, an Authorization
// header) from the configuration to the place that sends it. Its own header so that the modules
// below the configuration (the HTTP client) can hold one; config.h includes it.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>

namespace arrow_zerobus {

// A string that never shows its value: operator<<, ToString() and every message the library
// builds print "***" instead. Read it only through Reveal(), at the place that sends it.
// The buffer is wiped on destruction and before reassignment.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  SecretString(const SecretString& other) = default;
  SecretString(SecretString&& other) noexcept;
  SecretString& operator=(const SecretString& other);
  SecretString& operator=(SecretString&& other) noexcept;
  ~SecretString();

  bool empty() const { return value_.empty(); }
  // The value itself; named so that every use is easy to find.
  const std::string& Reveal() const { return value_; }
  // "***" (or "" when empty), never the value.
  std::string ToString() const { return value_.empty() ? std::string() : std::string("***"); }

  friend bool operator==(const SecretString& a, const SecretString& b) {
    return a.value_ == b.value_;
  }

 private:
  void Wipe();
  std::string value_;
};

std::ostream& operator<<(std::ostream& os, const SecretString& secret);

}  // namespace arrow_zerobus
