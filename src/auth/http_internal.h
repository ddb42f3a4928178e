// A small blocking HTTP client over libcurl (token endpoint). Proxy environment variables
// (http_proxy, https_proxy, no_proxy) are honoured by libcurl itself.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "arrow_zerobus/auth.h"

namespace arrow_zerobus::internal {

struct HttpRequest {
  std::string url;
  bool post = true;
  Headers headers;  // "name", "value"
  std::string body;
  // HTTP Basic credentials (never logged).
  std::string basic_user;
  std::string basic_password;
  std::chrono::milliseconds timeout{30'000};
  std::string ca_file;  // empty: system roots
  std::string user_agent;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Transport failures (DNS, connect, TLS, timeout) are Connection errors (retryable) with curl's
// message; any HTTP answer, 4xx/5xx included, is a response.
arrow::Result<HttpResponse> HttpCall(const HttpRequest& request);

// application/x-www-form-urlencoded value.
std::string FormEncode(std::string_view value);

}  // namespace arrow_zerobus::internal
