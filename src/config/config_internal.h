// Parsing helpers and the option table shared by the environment and YAML loaders of
// WrapperConfiguration.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "arrow_zerobus/config.h"

namespace arrow_zerobus::config_internal {

// `where` names the source of the value in errors, e.g. "environment variable RETRY_MAX_ATTEMPTS"
// or "config.yaml:7: retry.max_attempts". Values are quoted (and cut at 80 characters).
arrow::Result<bool> ParseBool(std::string_view text, std::string_view where);
arrow::Result<int64_t> ParseInt64(std::string_view text, std::string_view where);
arrow::Result<int32_t> ParseInt32(std::string_view text, std::string_view where);
arrow::Result<double> ParseDouble(std::string_view text, std::string_view where);
// 'value' quoted for an error message, cut when long.
std::string Quote(std::string_view value);
std::string ToLower(std::string_view text);

// One loadable option: its environment variable, its YAML place, how to set it from text and
// (for options that may be absent) how to clear it when YAML says null. Setters quote bad values
// in errors; the secret's setter cannot fail, so it is never quoted.
using Setter = arrow::Status (*)(WrapperConfiguration& config, const std::string& value,
                                 const std::string& where);
using Resetter = void (*)(WrapperConfiguration& config);

struct OptionSpec {
  const char* env;           // e.g. "RETRY_MAX_ATTEMPTS"
  const char* yaml_section;  // "" for top-level keys, else "retry", "debug", ...
  const char* yaml_key;      // "max_attempts"
  Setter set;
  Resetter reset;            // nullptr: null is not allowed
};

const std::vector<OptionSpec>& OptionSpecs();

}  // namespace arrow_zerobus::config_internal
