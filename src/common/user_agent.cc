#include "common/user_agent.h"

#include "arrow_zerobus/version.h"

namespace arrow_zerobus::internal {

std::string UserAgent(const std::string& application_name) {
  std::string ua(kProductName);
  ua += "/";
  ua += kVersion;
  if (!application_name.empty()) {
    ua += " ";
    ua += application_name;
  }
  return ua;
}

}  // namespace arrow_zerobus::internal
