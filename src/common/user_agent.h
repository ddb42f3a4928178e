// The user-agent every request of the library carries (gRPC streams, OAuth, Unity Catalog).
#pragma once

#include <string>

namespace arrow_zerobus::internal {

// "arrow-zerobus/<version>[ <application name>]".
std::string UserAgent(const std::string& application_name);

}  // namespace arrow_zerobus::internal
