// The library's version, as sent in the user-agent of every request to Zerobus.
#pragma once

#include <string_view>

namespace arrow_zerobus {

inline constexpr std::string_view kVersion = "0.1.0";
// Product token in user-agent strings: "arrow-zerobus/<version>".
inline constexpr std::string_view kProductName = "arrow-zerobus";

}  // namespace arrow_zerobus
