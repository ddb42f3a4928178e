#include "common/endpoint.h"

#include <cctype>
#include <charconv>

#include "arrow_zerobus/errors.h"

namespace arrow_zerobus::internal {

namespace {

// "<option><separator>'<url>' <why>"; long values are cut so a pasted blob does not flood the
// message.
arrow::Status Bad(std::string_view option, std::string_view separator, std::string_view url,
                  std::string_view why) {
  constexpr size_t kMax = 80;
  std::string msg(option);
  msg += separator;
  msg += "'";
  msg += url.substr(0, kMax);
  if (url.size() > kMax) msg += "...";
  msg += "' ";
  msg += why;
  return ConfigurationError(std::move(msg));
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

}  // namespace

std::string Endpoint::target() const {
  std::string out;
  if (host.find(':') != std::string::npos) {
    out = "[" + host + "]";
  } else {
    out = host;
  }
  out += ":" + std::to_string(port);
  return out;
}

std::string Endpoint::first_label() const { return host.substr(0, host.find('.')); }

arrow::Result<Endpoint> ParseEndpoint(std::string_view url, std::string_view option,
                                      std::string_view separator) {
  if (url.empty()) return ConfigurationError(std::string(option) + " is empty");
  for (char c : url) {
    if (c <= ' ' || c == 0x7f) {
      return Bad(option, separator, url,
                 "has an invalid host or path: it contains whitespace or control characters");
    }
  }
  Endpoint ep;
  std::string_view rest = url;
  const size_t scheme_end = rest.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string scheme(rest.substr(0, scheme_end));
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "https") {
      ep.tls = true;
      ep.port = 443;
    } else if (scheme == "http") {
      ep.tls = false;
      ep.port = 80;
    } else {
      return Bad(option, separator, url,
                 "has scheme '" + scheme +
                     "://': only https:// and http:// are supported (http:// for a local plaintext "
                     "server)");
    }
    rest.remove_prefix(scheme_end + 3);
  }
  // Authority ends at the first '/', '?' or '#'.
  const size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  if (auth_end != std::string_view::npos) {
    std::string_view tail = rest.substr(auth_end);
    if (tail != "/") {
      return Bad(option, separator, url,
                 "has a path or query '" + std::string(tail) +
                     "': it must not have a path, query or fragment (give scheme://host[:port])");
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    return Bad(option, separator, url, "must not contain user info");
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Bad(option, separator, url, "has an unclosed '[' in the host");
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Bad(option, separator, url, "has text after ']': junk after the IPv6 address");
      }
      port = after.substr(1);
      if (port.empty()) return Bad(option, separator, url, "has an empty port");
    }
    for (char c : host) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
        return Bad(option, separator, url,
                   "has an invalid host '" + std::string(host) + "' (not an IPv6 address)");
      }
    }
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) return Bad(option, separator, url, "has an empty port");
    }
    for (char c : host) {
      if (!IsHostChar(c)) {
        return Bad(option, separator, url, "has an invalid host '" + std::string(host) +
                                    "' (invalid character '" + std::string(1, c) + "')");
      }
    }
  }
  if (host.empty()) return Bad(option, separator, url, "has no host");
  if (!port.empty()) {
    int value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) {
      return Bad(option, separator, url,
                 "has an invalid port '" + std::string(port) + "' (1-65535)");
    }
    ep.port = value;
  }
  ep.host = std::string(host);
  return ep;
}

}  // namespace arrow_zerobus::internal
