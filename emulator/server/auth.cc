#include "server/auth.h"

#include <algorithm>
#include <array>
#include <random>

#include <nlohmann/json.hpp>

#include "decode/base64_internal.h"

namespace arrow_zerobus::emulator {

namespace {

using json = nlohmann::json;

HttpReply OAuthError(int status, std::string_view error, std::string description) {
  json body = {{"error", std::string(error)}, {"error_description", std::move(description)}};
  return {status, body.dump()};
}

// Same running time for equal-length inputs whatever they hold.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size()) {
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) {
        out.push_back(c);
      } else {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      }
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// application/x-www-form-urlencoded -> name -> value (a repeated name keeps the last value).
std::map<std::string, std::string> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view pair = body.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string name = UrlDecode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
      out[std::move(name)] = std::move(value);
    }
    pos = amp + 1;
  }
  return out;
}

std::string RandomToken() {
  // 256 bits from the OS entropy source; hex keeps it header-safe.
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "emu-";
  for (int i = 0; i < 8; ++i) {
    uint32_t v = rd();
    for (int j = 0; j < 8; ++j) {
      out.push_back(kHex[v & 0xF]);
      v >>= 4;
    }
  }
  return out;
}

bool Contains(const json& array, std::string_view value) {
  if (!array.is_array()) return false;
  for (const auto& v : array) {
    if (v.is_string() && LowerAscii(v.get<std::string>()) == LowerAscii(value)) return true;
  }
  return false;
}

}  // namespace

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

arrow::Result<TableNameParts> SplitTableName(std::string_view full_name) {
  TableNameParts parts;
  size_t a = full_name.find('.');
  size_t b = a == std::string_view::npos ? a : full_name.find('.', a + 1);
  if (a == std::string_view::npos || b == std::string_view::npos ||
      full_name.find('.', b + 1) != std::string_view::npos) {
    return arrow::Status::Invalid("table name '", full_name,
                                  "' must have three parts: catalog.schema.table");
  }
  parts.catalog = std::string(full_name.substr(0, a));
  parts.schema = std::string(full_name.substr(a + 1, b - a - 1));
  parts.table = std::string(full_name.substr(b + 1));
  if (parts.catalog.empty() || parts.schema.empty() || parts.table.empty()) {
    return arrow::Status::Invalid("table name '", full_name,
                                  "' has an empty part; expected catalog.schema.table");
  }
  return parts;
}

arrow::Result<std::set<std::string>> ParseAuthorizationDetails(std::string_view text) {
  json details = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (details.is_discarded() || !details.is_array()) {
    return arrow::Status::Invalid("authorization_details must be a JSON array");
  }
  std::set<std::string> catalogs, schemas, tables;
  for (size_t i = 0; i < details.size(); ++i) {
    const json& d = details[i];
    std::string where = "authorization_details[" + std::to_string(i) + "]";
    if (!d.is_object()) return arrow::Status::Invalid(where, " is not an object");
    auto str = [&](const char* key) -> arrow::Result<std::string> {
      auto it = d.find(key);
      if (it == d.end() || !it->is_string()) {
        return arrow::Status::Invalid(where, " needs a string '", key, "'");
      }
      return it->get<std::string>();
    };
    ARROW_ASSIGN_OR_RAISE(std::string type, str("type"));
    if (type != "unity_catalog_privileges") {
      return arrow::Status::Invalid(where, " has type '", type,
                                    "'; expected 'unity_catalog_privileges'");
    }
    ARROW_ASSIGN_OR_RAISE(std::string object_type, str("object_type"));
    ARROW_ASSIGN_OR_RAISE(std::string path, str("object_full_path"));
    auto privileges = d.find("privileges");
    if (privileges == d.end() || !privileges->is_array()) {
      return arrow::Status::Invalid(where, " needs an array 'privileges'");
    }
    path = LowerAscii(path);
    std::string kind = LowerAscii(object_type);
    if (kind == "catalog") {
      if (Contains(*privileges, "USE CATALOG")) catalogs.insert(path);
    } else if (kind == "schema") {
      if (Contains(*privileges, "USE SCHEMA")) schemas.insert(path);
    } else if (kind == "table") {
      auto ops = d.find("operations");
      if (Contains(*privileges, "MODIFY") && ops != d.end() && Contains(*ops, "zerobuswrite")) {
        ARROW_RETURN_NOT_OK(SplitTableName(path).status());
        tables.insert(path);
      }
    } else {
      return arrow::Status::Invalid(where, " has object_type '", object_type,
                                    "'; expected CATALOG, SCHEMA or TABLE");
    }
  }
  std::set<std::string> granted;
  for (const auto& t : tables) {
    auto parts = *SplitTableName(t);
    if (catalogs.count(parts.catalog) && schemas.count(parts.catalog + "." + parts.schema)) {
      granted.insert(t);
    }
  }
  return granted;
}

TokenStore::TokenStore(std::map<std::string, std::string> principals,
                       std::chrono::seconds lifetime)
    : principals_(std::move(principals)), lifetime_(lifetime) {}

std::string TokenStore::Issue(const std::string& client_id, std::set<std::string> tables,
                              std::chrono::seconds lifetime) {
  std::string token = RandomToken();
  std::lock_guard<std::mutex> lock(mu_);
  // Drop expired tokens now and then so a long run does not grow without bound.
  if (tokens_.size() > 4096) {
    auto now = Clock::now();
    std::erase_if(tokens_, [&](const auto& kv) {
      return kv.second.expires_at <= now || kv.second.revoked;
    });
  }
  tokens_[token] = TokenInfo{client_id, Clock::now() + lifetime, std::move(tables)};
  ++issued_;
  return token;
}

std::string TokenStore::IssueForTesting(const std::string& client_id,
                                        std::set<std::string> tables,
                                        std::chrono::seconds lifetime) {
  std::set<std::string> lowered;
  for (const auto& t : tables) lowered.insert(LowerAscii(t));
  return Issue(client_id, std::move(lowered), lifetime);
}

size_t TokenStore::issued_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return issued_;
}

HttpReply TokenStore::HandleTokenRequest(std::string_view authorization,
                                         std::string_view content_type,
                                         std::string_view form_body) {
  // Client authentication: HTTP Basic with client_id:client_secret.
  constexpr std::string_view kBasic = "Basic ";
  if (authorization.size() <= kBasic.size() ||
      LowerAscii(authorization.substr(0, kBasic.size())) != "basic ") {
    return OAuthError(401, "invalid_client", "client authentication must use HTTP Basic");
  }
  auto decoded = DecodeBase64(authorization.substr(kBasic.size()));
  size_t colon = decoded ? decoded->find(':') : std::string::npos;
  if (!decoded || colon == std::string::npos) {
    return OAuthError(401, "invalid_client", "malformed HTTP Basic credentials");
  }
  std::string client_id = decoded->substr(0, colon);
  std::string_view secret = std::string_view(*decoded).substr(colon + 1);
  auto principal = principals_.find(client_id);
  // Compare against something even for unknown ids so timing does not reveal which ids exist.
  bool secret_ok = ConstantTimeEquals(
      principal == principals_.end() ? std::string_view() : principal->second, secret);
  if (principal == principals_.end() || !secret_ok) {
    return OAuthError(401, "invalid_client", "unknown client id or wrong client secret");
  }
  if (LowerAscii(content_type).find("application/x-www-form-urlencoded") != 0) {
    return OAuthError(400, "invalid_request",
                      "token request body must be application/x-www-form-urlencoded");
  }
  auto form = ParseForm(form_body);
  if (form["grant_type"] != "client_credentials") {
    return OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials");
  }
  if (form["scope"] != "all-apis") {
    return OAuthError(400, "invalid_scope", "scope must be all-apis");
  }
  const std::string& resource = form["resource"];
  constexpr std::string_view kPrefix = "api://databricks/workspaces/";
  constexpr std::string_view kSuffix = "/zerobusDirectWriteApi";
  std::set<std::string> tables;
  // authorization_details and resource go together: they scope a token to Zerobus writes.
  if (!resource.empty() || form.count("authorization_details")) {
    if (resource.size() <= kPrefix.size() + kSuffix.size() ||
        resource.compare(0, kPrefix.size(), kPrefix) != 0 ||
        resource.compare(resource.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
      return OAuthError(400, "invalid_request",
                        "resource must be api://databricks/workspaces/<workspace_id>/"
                        "zerobusDirectWriteApi");
    }
    auto it = form.find("authorization_details");
    if (it == form.end()) {
      return OAuthError(400, "invalid_request", "authorization_details is required");
    }
    auto granted = ParseAuthorizationDetails(it->second);
    if (!granted.ok()) return OAuthError(400, "invalid_request", granted.status().message());
    tables = std::move(*granted);
  }
  std::chrono::seconds lifetime = lifetime_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lifetime_override_) lifetime = *lifetime_override_;
  }
  std::string token = Issue(client_id, std::move(tables), lifetime);
  json body = {{"access_token", token},
               {"expires_in", static_cast<int64_t>(lifetime.count())},
               {"token_type", "Bearer"},
               {"scope", "all-apis"}};
  return {200, body.dump()};
}

std::optional<TokenStore::TokenInfo> TokenStore::Lookup(std::string_view authorization,
                                                        AuthCheck* out) const {
  constexpr int kUnauthenticated = 16;
  if (authorization.empty()) {
    *out = {kUnauthenticated, "missing authorization header (expected 'Bearer <token>')"};
    return std::nullopt;
  }
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      LowerAscii(authorization.substr(0, kBearer.size())) != kBearer) {
    *out = {kUnauthenticated, "authorization header is not a Bearer token"};
    return std::nullopt;
  }
  std::string token(authorization.substr(kBearer.size()));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) {
    *out = {kUnauthenticated, "invalid access token"};
    return std::nullopt;
  }
  if (it->second.revoked) {
    *out = {kUnauthenticated, "access token revoked; request a new token"};
    return std::nullopt;
  }
  if (Clock::now() >= it->second.expires_at) {
    *out = {kUnauthenticated, "access token expired; request a new token"};
    return std::nullopt;
  }
  return it->second;
}

AuthCheck TokenStore::CheckStreamAccess(std::string_view authorization,
                                        std::string_view table) const {
  AuthCheck check;
  auto info = Lookup(authorization, &check);
  if (!info) return check;
  if (!info->tables.count(LowerAscii(table))) {
    constexpr int kPermissionDenied = 7;
    return {kPermissionDenied,
            "4024 Missing table-level grant: the token has no MODIFY/zerobuswrite grant on '" +
                std::string(table) + "'"};
  }
  return check;
}

AuthCheck TokenStore::CheckAnyToken(std::string_view authorization) const {
  AuthCheck check;
  Lookup(authorization, &check);
  return check;
}

void TokenStore::SetLifetimeOverride(std::optional<std::chrono::seconds> lifetime) {
  std::lock_guard<std::mutex> lock(mu_);
  lifetime_override_ = lifetime;
}

void TokenStore::RevokeAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [token, info] : tokens_) info.revoked = true;
}

void TokenStore::ExpireAll() {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = Clock::now();
  for (auto& [token, info] : tokens_) info.expires_at = std::min(info.expires_at, now);
}

}  // namespace arrow_zerobus::emulator
