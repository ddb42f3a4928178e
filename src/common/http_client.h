// The library's one HTTP client: a small blocking libcurl call used by the OAuth token endpoint,
// the Unity Catalog tables API and the OTLP exporter.
//
// Proxies: libcurl honours http_proxy, https_proxy and no_proxy itself, except that loopback
// hosts are always reached directly: a proxy on another machine would reach its own loopback,
// and over plain http it would read the request's credentials.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arrow/result.h>

#include "arrow_zerobus/secret.h"

namespace arrow_zerobus::internal {

struct HttpRequest {
  std::string url;
  bool post = true;
  std::vector<std::pair<std::string, std::string>> headers;  // "name", "value"
  std::string body;
  // The Authorization header's value ("Basic ...", see BasicAuthorization). Kept out of
  // `headers` so that it is never logged and every copy made of it here is wiped.
  SecretString authorization;
  std::chrono::milliseconds timeout{30'000};  // the whole request, and the connection
  std::string ca_file;                        // empty: system roots
  std::string user_agent;                     // empty: none
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// Transport failures (DNS, connect, TLS, timeout) are Connection errors whose message is
// "HTTP request failed: " and curl's description: retryable, except those that never heal (a
// certificate that does not verify, a server that does not speak HTTP/1.1 or TLS), whose
// message names the cause. Any HTTP answer, 4xx/5xx included, is a response.
arrow::Result<HttpResponse> HttpCall(const HttpRequest& request);

// Whether the server at `authority` ("host:port", "[v6]:port") completes a TLS handshake (its
// certificate is not checked: this only tells a TLS server from a plaintext one, and nothing is
// sent after the handshake). False on any failure or after `timeout`.
bool SpeaksTls(const std::string& authority, std::chrono::milliseconds timeout);

// application/x-www-form-urlencoded value (also fine for a URL path segment).
std::string FormEncode(std::string_view value);

// "Basic " + base64("user:password") (RFC 7617). The only place the password is copied out of
// its SecretString; the intermediate buffers are wiped before returning.
SecretString BasicAuthorization(std::string_view user, const SecretString& password);

// A host that names this machine: "localhost" (any case), an IPv4 address in 127.0.0.0/8 in
// dotted-quad form, or the IPv6 address ::1 (without brackets). Other spellings are not
// recognised, on purpose: this decides where a secret may go in clear.
bool IsLoopbackHost(std::string_view host);

}  // namespace arrow_zerobus::internal
