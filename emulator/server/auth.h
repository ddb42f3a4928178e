// OAuth side of the emulator: the client-credentials token endpoint (protocol doc section 3) and
// the check the gRPC side does on every create_stream. Tokens are opaque random strings held
// only in memory; they expire and carry the tables granted through `authorization_details`.
//
// Secrets (client secrets, tokens) never appear in messages returned by this module.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include <arrow/result.h>

namespace arrow_zerobus::emulator {

// Result of an HTTP handler: status code, JSON body.
struct HttpReply {
  int status = 200;
  std::string body;
};

// Result of the gRPC-side token check; `code` is a grpc::StatusCode value (0 = OK).
struct AuthCheck {
  int code = 0;
  std::string message;
  bool ok() const { return code == 0; }
};

// The three-part name split, or an error message when it is not `catalog.schema.table` with
// non-empty parts.
struct TableNameParts {
  std::string catalog, schema, table;
};
arrow::Result<TableNameParts> SplitTableName(std::string_view full_name);

// Unity Catalog names are case-insensitive: grants and tables are compared in lower case.
std::string LowerAscii(std::string_view s);

// Thread-safe: all methods may be called concurrently.
class TokenStore {
 public:
  using Clock = std::chrono::steady_clock;

  // `principals`: client id -> secret. `lifetime`: how long an issued token is valid.
  TokenStore(std::map<std::string, std::string> principals, std::chrono::seconds lifetime);

  // POST /oidc/v1/token. `authorization` is the HTTP Authorization header ("Basic ..."),
  // `form_body` the application/x-www-form-urlencoded body. Answers the OAuth JSON
  // (access_token, expires_in, token_type) or an OAuth error (400 invalid_request /
  // unsupported_grant_type / invalid_scope, 401 invalid_client).
  HttpReply HandleTokenRequest(std::string_view authorization, std::string_view content_type,
                               std::string_view form_body);

  // The check create_stream does with the `authorization` metadata value (empty if absent).
  // UNAUTHENTICATED for a missing/malformed/unknown/expired token, PERMISSION_DENIED when the
  // token's grants do not cover `table` (lower-cased three-part name).
  AuthCheck CheckStreamAccess(std::string_view authorization, std::string_view table) const;

  // Valid and unexpired (any grants): used for the Unity Catalog metadata endpoint.
  AuthCheck CheckAnyToken(std::string_view authorization) const;

  // Fault "expire_tokens": tokens issued from now on are valid for `lifetime`, and their
  // expires_in says so, as a real token reaches its stated expiry; tokens already issued keep
  // their own expiry. nullopt goes back to the lifetime given to the constructor.
  void SetLifetimeOverride(std::optional<std::chrono::seconds> lifetime);

  // Fault "revoke_tokens": every token issued so far is refused from now on ("revoked"),
  // whatever its stated expiry, as after a revocation; new tokens work.
  void RevokeAll();

  // Test-only device kept for existing C++ callers (tests/transport, tests/wrapper): every
  // token issued so far counts as expired now, before its stated expiry. Real tokens expire at
  // their expires_in; the admin API offers expire_tokens and revoke_tokens instead.
  void ExpireAll();

  // Issues a token directly (tests and tools): the same as a successful token request.
  std::string IssueForTesting(const std::string& client_id, std::set<std::string> tables,
                              std::chrono::seconds lifetime);

  size_t issued_count() const;

 private:
  struct TokenInfo {
    std::string client_id;
    Clock::time_point expires_at;
    std::set<std::string> tables;  // lower-cased three-part names with a write grant
    bool revoked = false;
  };
  std::string Issue(const std::string& client_id, std::set<std::string> tables,
                    std::chrono::seconds lifetime);
  // Finds the token of a "Bearer <token>" header; nullopt with `out` set on failure.
  std::optional<TokenInfo> Lookup(std::string_view authorization, AuthCheck* out) const;

  const std::map<std::string, std::string> principals_;
  const std::chrono::seconds lifetime_;
  mutable std::mutex mu_;
  std::optional<std::chrono::seconds> lifetime_override_;  // guarded by mu_
  std::unordered_map<std::string, TokenInfo> tokens_;
  size_t issued_ = 0;
};

// Parses the `authorization_details` JSON array of the token request into the tables it
// grants write access to: a TABLE object with privileges SELECT and MODIFY and operation
// "zerobuswrite", whose catalog (USE CATALOG) and schema (USE SCHEMA) are granted in the same
// array. Malformed input is an Invalid status naming the element and key.
arrow::Result<std::set<std::string>> ParseAuthorizationDetails(std::string_view json);

}  // namespace arrow_zerobus::emulator
