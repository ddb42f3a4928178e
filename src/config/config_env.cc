// WrapperConfiguration::FromEnvironment over the shared option table.
#include <cstdlib>
#include <string>

#include "arrow_zerobus/config.h"
#include "config/config_internal.h"

namespace arrow_zerobus {

arrow::Result<WrapperConfiguration> WrapperConfiguration::FromEnvironment(
    const EnvLookup& lookup) {
  WrapperConfiguration config;
  for (const auto& spec : config_internal::OptionSpecs()) {
    std::optional<std::string> value = lookup(spec.env);
    if (!value) continue;
    // Parse errors quote the value; the secret is taken as-is and cannot fail to parse.
    ARROW_RETURN_NOT_OK(
        spec.set(config, *value, std::string("environment variable ") + spec.env));
  }
  // A descriptor file means a given descriptor unless the source is set explicitly.
  if (config.descriptor && !lookup("ZEROBUS_DESCRIPTOR_SOURCE")) {
    config.descriptor_source = DescriptorSource::kGiven;
  }
  return config;
}

arrow::Result<WrapperConfiguration> WrapperConfiguration::FromEnvironment() {
  return FromEnvironment([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace arrow_zerobus
