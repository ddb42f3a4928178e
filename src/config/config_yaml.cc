// WrapperConfiguration::FromYamlString / FromYamlFile over the shared option table.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <yaml-cpp/yaml.h>

#include "arrow_zerobus/config.h"
#include "arrow_zerobus/errors.h"
#include "config/config_internal.h"

namespace arrow_zerobus {

namespace {

using config_internal::OptionSpec;
using config_internal::OptionSpecs;

std::string Where(std::string_view source, const YAML::Node& node, const std::string& key) {
  std::string out(source);
  const YAML::Mark mark = node.Mark();
  if (mark.line >= 0) out += ":" + std::to_string(mark.line + 1);
  out += ": " + key;
  return out;
}

std::string KnownKeys(const std::string& section) {
  std::set<std::string> keys;
  for (const auto& spec : OptionSpecs()) {
    if (section == spec.yaml_section) keys.insert(spec.yaml_key);
  }
  if (section.empty()) keys.insert({"observability", "debug", "retry", "stream", "cooldown"});
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

const OptionSpec* FindSpec(const std::string& section, const std::string& key) {
  for (const auto& spec : OptionSpecs()) {
    if (section == spec.yaml_section && key == spec.yaml_key) return &spec;
  }
  return nullptr;
}

bool IsSection(const std::string& key) {
  return key == "observability" || key == "debug" || key == "retry" || key == "stream" ||
         key == "cooldown";
}

arrow::Status ApplyValue(WrapperConfiguration& config, const OptionSpec& spec,
                         const YAML::Node& value, const std::string& where) {
  if (value.IsNull()) {
    if (spec.reset == nullptr) return ConfigurationError(where + ": must not be null");
    spec.reset(config);
    return arrow::Status::OK();
  }
  if (!value.IsScalar()) {
    // Never show the node: it might be the secret.
    return ConfigurationError(where + ": must be a single value, not a " +
                              (value.IsMap() ? "mapping" : "list"));
  }
  return spec.set(config, value.Scalar(), where);
}

arrow::Status ApplySection(WrapperConfiguration& config, const std::string& section,
                           const YAML::Node& node, std::string_view source) {
  const std::string prefix = section.empty() ? "" : section + ".";
  if (node.IsNull()) return arrow::Status::OK();
  if (!node.IsMap()) {
    return ConfigurationError(Where(source, node, section.empty() ? "document" : section) +
                              ": must be a mapping of keys to values");
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      return ConfigurationError(Where(source, it->first, prefix + "<key>") +
                                ": keys must be plain strings");
    }
    const std::string key = it->first.Scalar();
    const std::string where = Where(source, it->first, prefix + key);
    if (section.empty() && IsSection(key)) {
      ARROW_RETURN_NOT_OK(ApplySection(config, key, it->second, source));
      continue;
    }
    const OptionSpec* spec = FindSpec(section, key);
    if (spec == nullptr) {
      return ConfigurationError(where + ": unknown key (known keys" +
                                (section.empty() ? std::string() : " in " + section) + ": " +
                                KnownKeys(section) + ")");
    }
    ARROW_RETURN_NOT_OK(ApplyValue(config, *spec, it->second, where));
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<WrapperConfiguration> WrapperConfiguration::FromYamlString(std::string_view yaml,
                                                                         std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // The parser's message names the position and the problem, not the value.
    return ConfigurationError(std::string(source) + ":" + std::to_string(e.mark.line + 1) +
                              ": invalid YAML: " + e.msg);
  }
  WrapperConfiguration config;
  bool source_given = false;
  try {
    ARROW_RETURN_NOT_OK(ApplySection(config, "", root, source));
    const YAML::Node& croot = root;  // const: lookups must not insert keys
    if (croot.IsMap()) {
      const YAML::Node stream = croot["stream"];
      source_given = stream.IsDefined() && stream.IsMap() && stream["descriptor_source"].IsDefined();
    }
  } catch (const YAML::Exception& e) {
    return ConfigurationError(std::string(source) + ": invalid YAML: " + e.msg);
  }
  if (config.descriptor && !source_given) config.descriptor_source = DescriptorSource::kGiven;
  return config;
}

arrow::Result<WrapperConfiguration> WrapperConfiguration::FromYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return ConfigurationError("configuration file '" + path + "' cannot be opened: " +
                              std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return FromYamlString(text.str(), path);
}

}  // namespace arrow_zerobus
