// Credentials for Zerobus streams: OAuth client credentials (machine to machine, protocol doc
// section 3) with a process-wide token cache, or a caller-supplied headers provider.
//
// Secrets (client secrets, tokens) never appear in error messages or logs made here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "arrow_zerobus/secret.h"

namespace arrow_zerobus {

// gRPC metadata: lower-case keys, printable ASCII values.
using Headers = std::vector<std::pair<std::string, std::string>>;

// Supplies the opening metadata of every Zerobus stream RPC (the token travels only there; a
// long stream may outlive it). A stream calls GetHeaders for every (re)open, from its own worker
// thread, so implementations may block (e.g. fetch a token over the network).
//
// The stream itself sets `x-databricks-zerobus-table-name` and the user-agent; a provider's
// values for those two keys are ignored.
//
// Thread-safety: implementations must be thread-safe (several streams share one provider).
class HeadersProvider {
 public:
  virtual ~HeadersProvider() = default;
  virtual arrow::Result<Headers> GetHeaders() = 0;
  // The same, ending by `deadline` (the time budget of the send that needs the headers): a
  // provider that fetches over the network should give up by then. The default ignores it.
  virtual arrow::Result<Headers> GetHeaders(std::chrono::steady_clock::time_point deadline) {
    (void)deadline;
    return GetHeaders();
  }
  // The server refused the credentials when a stream opened (UNAUTHENTICATED or
  // PERMISSION_DENIED): drop what is cached so the next GetHeaders fetches fresh ones.
  virtual void Invalidate() {}
};

// Always the same headers: a pre-obtained token ({"authorization", "Bearer ..."}), a proxy's
// headers, or none for a local server without auth.
std::shared_ptr<HeadersProvider> MakeStaticHeadersProvider(Headers headers);

struct OAuthOptions {
  // Workspace URL; the token endpoint is `{unity_catalog_url}/oidc/v1/token`. https://, or
  // http:// only to a loopback host (127.0.0.0/8, ::1, localhost: a local server), because the
  // client secret travels in the request; no user:password@ part.
  std::string unity_catalog_url;
  std::string client_id;
  // Read only to build the request's Basic Authorization header (and hashed for the cache key).
  SecretString client_secret;
  // catalog.schema.table the token is scoped to (authorization_details).
  std::string table_name;
  // The `resource` names the workspace: the first DNS label of the Zerobus endpoint's host
  // (WorkspaceIdFromEndpoint).
  std::string workspace_id;
  // Fetch a new token this long before the cached one expires.
  std::chrono::seconds refresh_margin{300};
  // One HTTP request, connection included.
  std::chrono::milliseconds request_timeout{30'000};
  // Total tries for 5xx and network errors (the first included); 4xx, and network errors that
  // cannot heal (a certificate that does not verify, a server that does not speak HTTP/1.1),
  // are never retried. All tries end by the deadline given to GetToken, when there is one.
  int max_attempts = 4;
  // Wait before the second try; doubles per try, with jitter.
  std::chrono::milliseconds retry_backoff{250};
  // PEM bundle to verify the token endpoint with instead of the system roots.
  std::string ca_file;
  // Appended to the user-agent ("arrow-zerobus/<version> <application_name>").
  std::string application_name;

  static OAuthOptions Defaults() { return OAuthOptions(); }
  // Configuration error naming the first bad option.
  arrow::Status Validate() const;
};

// Fetches client-credentials tokens and caches them process-wide per (client id, SHA-256 of the
// secret, table): sources with the same key share one token.
//
// Errors: a 4xx answer is an Authentication error (not retryable). 5xx and network errors are
// retried up to max_attempts; when they run out it is a TokenRefresh error (retryable). While a
// cached token has not expired yet, a failed early refresh still hands out the cached token.
//
// Thread-safety: thread-safe; concurrent callers for one key wait for one fetch.
class OAuthTokenSource {
 public:
  static arrow::Result<std::shared_ptr<OAuthTokenSource>> Make(OAuthOptions options);
  ~OAuthTokenSource();

  // A token valid for at least refresh_margin (or the cached one, see above).
  arrow::Result<std::string> GetToken();
  // The same, with every try and wait of a fetch ending by `deadline`.
  arrow::Result<std::string> GetToken(std::chrono::steady_clock::time_point deadline);
  // Drops the cached token of this key if it is still `token` (empty: whatever is cached).
  void Invalidate(const std::string& token = "");
  // Successful token endpoint calls made by this source (observability and tests).
  int64_t fetch_count() const;

  const OAuthOptions& options() const;

 private:
  struct Impl;
  explicit OAuthTokenSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A HeadersProvider sending `authorization: Bearer <token>` from an OAuthTokenSource.
arrow::Result<std::shared_ptr<HeadersProvider>> MakeOAuthHeadersProvider(OAuthOptions options);
std::shared_ptr<HeadersProvider> MakeOAuthHeadersProvider(
    std::shared_ptr<OAuthTokenSource> source);

// The workspace id of a Zerobus endpoint: the first DNS label of its host
// ("https://1234.zerobus.us-west-2.cloud.databricks.com" -> "1234"). Configuration error for an
// endpoint that cannot be parsed.
arrow::Result<std::string> WorkspaceIdFromEndpoint(std::string_view endpoint);

// Drops every cached token (tests; after credentials were rotated).
void ClearTokenCache();

}  // namespace arrow_zerobus
