// Parsing of Zerobus endpoint URLs (protocol doc section 2): one parser for configuration
// validation, the OAuth workspace id and the transport's channel.
#pragma once

#include <string>
#include <string_view>

#include <arrow/result.h>

namespace arrow_zerobus::internal {

struct Endpoint {
  bool tls = true;      // https:// (or no scheme); false only for http://
  std::string host;     // without brackets for IPv6
  int port = 443;
  // "host:port" as gRPC wants it ("[::1]:port" for IPv6).
  std::string target() const;
  // First DNS label of the host (the workspace id for real endpoints).
  std::string first_label() const;
};

// "https://h[:p]", "http://h:p", "h[:p]" (= https). A path other than "/", a query, user info,
// an unknown scheme, an empty host or a bad port is a Configuration error naming `option` and
// showing the value. The one endpoint parser: the public ParseEndpoint (config.h) wraps it.
// `separator` goes between the option name and the quoted value: " " in the transport's
// messages, ": " in configuration messages (like every other option there).
arrow::Result<Endpoint> ParseEndpoint(std::string_view url, std::string_view option = "endpoint",
                                      std::string_view separator = " ");

}  // namespace arrow_zerobus::internal
