// OAuth client credentials for Zerobus (protocol doc section 3) and the headers providers.

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/errors.h"
#include "auth/sha256_internal.h"
#include "arrow_zerobus/log.h"
#include "common/endpoint.h"
#include "common/http_client.h"
#include "common/retry_policy.h"
#include "common/user_agent.h"

namespace arrow_zerobus {

using Clock = std::chrono::steady_clock;

namespace {

// One cached token, shared by every source with the same key.
struct CacheEntry {
  std::mutex fetch_mu;  // one fetch at a time per key
  std::mutex mu;        // guards the fields below
  std::string token;
  Clock::time_point refresh_at;
  Clock::time_point expires_at;
};

std::mutex g_cache_mu;
std::map<std::string, std::shared_ptr<CacheEntry>>& Cache() {
  static auto* cache = new std::map<std::string, std::shared_ptr<CacheEntry>>();
  return *cache;
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> SplitDots(const std::string& name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

// The OAuth error of a 4xx/5xx answer, without echoing anything else the server sent.
std::string OAuthErrorText(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  std::string out;
  if (j.contains("error") && j["error"].is_string()) out = j["error"].get<std::string>();
  if (j.contains("error_description") && j["error_description"].is_string()) {
    std::string d = j["error_description"].get<std::string>();
    if (d.size() > 200) d = d.substr(0, 200) + "...";
    out += out.empty() ? d : ": " + d;
  }
  return out;
}

// The host of "host[:port]" or "[v6][:port]", an IPv6 literal without its brackets.
std::string_view HostOf(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    return close == std::string_view::npos ? std::string_view() : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.find(':'));
}

class StaticHeadersProvider : public HeadersProvider {
 public:
  explicit StaticHeadersProvider(Headers headers) : headers_(std::move(headers)) {}
  arrow::Result<Headers> GetHeaders() override { return headers_; }

 private:
  const Headers headers_;
};

class OAuthHeadersProvider : public HeadersProvider {
 public:
  explicit OAuthHeadersProvider(std::shared_ptr<OAuthTokenSource> source)
      : source_(std::move(source)) {}
  arrow::Result<Headers> GetHeaders() override { return GetHeaders(Clock::time_point::max()); }
  arrow::Result<Headers> GetHeaders(Clock::time_point deadline) override {
    ARROW_ASSIGN_OR_RAISE(std::string token, source_->GetToken(deadline));
    {
      std::lock_guard<std::mutex> lk(mu_);
      last_token_ = token;
    }
    return Headers{{"authorization", "Bearer " + token}};
  }
  void Invalidate() override {
    std::string token;
    {
      std::lock_guard<std::mutex> lk(mu_);
      token = std::move(last_token_);
      last_token_.clear();
    }
    // Only the token this provider handed out: another stream may already have a fresh one.
    if (!token.empty()) source_->Invalidate(token);
  }

 private:
  std::shared_ptr<OAuthTokenSource> source_;
  std::mutex mu_;
  std::string last_token_;
};

}  // namespace

arrow::Status OAuthOptions::Validate() const {
  if (unity_catalog_url.empty()) return ConfigurationError("unity_catalog_url is required for OAuth");
  {
    std::string_view url = unity_catalog_url;
    const bool https = url.rfind("https://", 0) == 0;
    if (!(https || url.rfind("http://", 0) == 0)) {
      return ConfigurationError("unity_catalog_url '" + unity_catalog_url +
                                "' must start with https:// (or http:// for a local server)");
    }
    const size_t host_start = url.find("://") + 3;
    const size_t host_end = url.find_first_of("/?#", host_start);
    if (host_end == host_start || host_start >= url.size()) {
      return ConfigurationError("unity_catalog_url '" + unity_catalog_url + "' has no host");
    }
    for (char c : url) {
      if (c <= ' ' || c == 0x7f) {
        return ConfigurationError("unity_catalog_url '" + unity_catalog_url +
                                  "' contains whitespace or control characters");
      }
    }
    const std::string_view authority = url.substr(host_start, host_end - host_start);
    // Refused rather than parsed: with "user@" the host is what follows the '@'
    // ("http://127.0.0.1@example.com" is example.com), and the URL is quoted in error messages,
    // which must never show a password.
    if (authority.find('@') != std::string_view::npos) {
      return ConfigurationError(
          "unity_catalog_url must not contain user:password@ (client_id and client_secret are "
          "sent in the Authorization header)");
    }
    // The token request carries the client secret: in clear only to this machine.
    if (!https && !internal::IsLoopbackHost(HostOf(authority))) {
      return ConfigurationError(
          "unity_catalog_url '" + unity_catalog_url +
          "' is plain http:// to a host that is not this machine, so the client secret would "
          "travel in clear: use https:// (http:// is only allowed for a loopback host: "
          "127.0.0.0/8, ::1 or localhost)");
    }
  }
  if (client_id.empty()) return ConfigurationError("client_id is required for OAuth");
  if (client_secret.empty()) return ConfigurationError("client_secret is required for OAuth");
  {
    auto parts = SplitDots(table_name);
    bool ok = parts.size() == 3;
    for (const auto& p : parts) ok = ok && !p.empty();
    if (!ok) {
      return ConfigurationError("table_name '" + table_name +
                                "' must be a three-part name catalog.schema.table");
    }
  }
  if (workspace_id.empty()) {
    return ConfigurationError("workspace_id is required (WorkspaceIdFromEndpoint(endpoint))");
  }
  if (refresh_margin.count() < 0) return ConfigurationError("refresh_margin must not be negative");
  if (request_timeout.count() <= 0) return ConfigurationError("request_timeout must be positive");
  if (max_attempts < 1) {
    return ConfigurationError("max_attempts must be at least 1, got " + std::to_string(max_attempts));
  }
  if (retry_backoff.count() < 0) return ConfigurationError("retry_backoff must not be negative");
  return arrow::Status::OK();
}

struct OAuthTokenSource::Impl {
  OAuthOptions options;
  std::string token_url;
  std::string body;  // the form, the same for every fetch
  std::shared_ptr<CacheEntry> entry;
  std::atomic<int64_t> fetches{0};

  struct Fetched {
    std::string token;
    std::chrono::seconds expires_in;
  };

  // One token endpoint call with retries for 5xx and network errors, all of them within
  // `deadline` (the budget of the operation that needs the token).
  arrow::Result<Fetched> Fetch(internal::Deadline deadline) {
    internal::HttpRequest req;
    req.url = token_url;
    req.post = true;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                   {"Accept", "application/json"}};
    req.body = body;
    // Built for this fetch only and wiped when `req` goes: the secret is not kept revealed
    // between fetches.
    req.authorization = internal::BasicAuthorization(options.client_id, options.client_secret);
    req.ca_file = options.ca_file;
    req.user_agent = internal::UserAgent(options.application_name);
    internal::LimitedErrorCountRetryPolicy retry(options.max_attempts - 1);
    internal::ExponentialBackoffPolicy backoff(options.retry_backoff, options.retry_backoff * 1024,
                                               2.0, 0.5);
    arrow::Status last;
    bool out_of_time = false;
    while (true) {
      req.timeout = deadline.Cap(options.request_timeout);
      auto answer = Attempt(req);
      if (answer.ok()) return answer;
      last = answer.status();
      if (!retry.OnFailure(last)) break;
      const std::chrono::milliseconds delay = backoff.OnCompletion();
      if (!deadline.Allows(delay)) {
        out_of_time = true;
        break;
      }
      if (LogEnabled(LogSeverity::kWarning)) {
        Log(LogSeverity::kWarning, "token endpoint " + token_url + ": attempt " +
                                       std::to_string(retry.failures()) + " of " +
                                       std::to_string(options.max_attempts) + " failed (" +
                                       last.message() + "); next attempt in " +
                                       std::to_string(delay.count()) + " ms");
      }
      std::this_thread::sleep_for(delay);
    }
    if (!IsRetryable(last)) {
      // Authentication errors name the URL already; a connection that never heals does not.
      if (GetErrorKind(last) != ErrorKind::kConnection) return last;
      return MakeError(ErrorKind::kConnection, false,
                       "token endpoint " + token_url + ": " + last.message());
    }
    return MakeError(ErrorKind::kTokenRefresh, true,
                     "no token from " + token_url + " after " +
                         std::to_string(retry.failures()) + " attempts" +
                         (out_of_time ? " (the operation's time budget ran out)" : "") + ": " +
                         last.message());
  }

  // One call of the token endpoint: the token, or the error (retryable for 5xx, 429 and network
  // failures that can heal).
  arrow::Result<Fetched> Attempt(const internal::HttpRequest& req) {
    {
      auto resp = internal::HttpCall(req);
      if (!resp.ok()) return resp.status();
      const long code = resp->status;
      if (code >= 500 || code == 429) {
        std::string why = OAuthErrorText(resp->body);
        return MakeError(ErrorKind::kTokenRefresh, true,
                         "token endpoint " + token_url + " answered HTTP " + std::to_string(code) +
                             (why.empty() ? "" : ": " + why));
      }
      if (code >= 400) {
        std::string why = OAuthErrorText(resp->body);
        return AuthenticationError("token endpoint " + token_url + " refused client '" +
                                   options.client_id + "': HTTP " + std::to_string(code) +
                                   (why.empty() ? "" : ": " + why));
      }
      if (code != 200) {
        return AuthenticationError("token endpoint " + token_url + " answered HTTP " +
                                   std::to_string(code) + " instead of 200");
      }
      auto j = nlohmann::json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object()) {
        return AuthenticationError("token endpoint " + token_url + " answered with non-JSON");
      }
      if (!j.contains("access_token") || !j["access_token"].is_string() ||
          j["access_token"].get<std::string>().empty()) {
        return AuthenticationError("token endpoint " + token_url +
                                   " answered without an access_token");
      }
      if (j.contains("token_type") && j["token_type"].is_string() &&
          LowerAscii(j["token_type"].get<std::string>()) != "bearer") {
        return AuthenticationError("token endpoint " + token_url + " answered token_type '" +
                                   j["token_type"].get<std::string>() + "' instead of Bearer");
      }
      int64_t expires_in = 3600;
      if (j.contains("expires_in")) {
        const auto& e = j["expires_in"];
        if (e.is_number_float()) {
          // A float out of int64 range would be undefined behaviour to convert: bound it first
          // (anything past the cap below is the same as the cap).
          const double d = e.get<double>();
          expires_in = d >= 1e12 ? int64_t{1'000'000'000'000} : d < 1 ? -1 : static_cast<int64_t>(d);
        } else if (e.is_number()) {
          expires_in = e.is_number_unsigned() && e.get<uint64_t>() > uint64_t{1'000'000'000'000}
                           ? int64_t{1'000'000'000'000}
                           : e.get<int64_t>();
        } else if (e.is_string()) {
          try {
            expires_in = std::stoll(e.get<std::string>());
          } catch (...) {
            expires_in = -1;
          }
        }
        if (expires_in <= 0) {
          return AuthenticationError("token endpoint " + token_url +
                                     " answered an invalid expires_in");
        }
        // Lifetimes past ten years are taken as ten years: expiry times stay far from overflow.
        expires_in = std::min<int64_t>(expires_in, int64_t{10} * 365 * 24 * 3600);
      }
      ++fetches;
      return Fetched{j["access_token"].get<std::string>(), std::chrono::seconds(expires_in)};
    }
  }
};

OAuthTokenSource::OAuthTokenSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OAuthTokenSource::~OAuthTokenSource() = default;

arrow::Result<std::shared_ptr<OAuthTokenSource>> OAuthTokenSource::Make(OAuthOptions options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  auto impl = std::make_unique<Impl>();
  std::string base = options.unity_catalog_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  impl->token_url = base + "/oidc/v1/token";
  const auto parts = SplitDots(options.table_name);
  const nlohmann::json details = nlohmann::json::array({
      {{"type", "unity_catalog_privileges"},
       {"privileges", {"USE CATALOG"}},
       {"object_type", "CATALOG"},
       {"object_full_path", parts[0]}},
      {{"type", "unity_catalog_privileges"},
       {"privileges", {"USE SCHEMA"}},
       {"object_type", "SCHEMA"},
       {"object_full_path", parts[0] + "." + parts[1]}},
      {{"type", "unity_catalog_privileges"},
       {"privileges", {"SELECT", "MODIFY"}},
       {"object_type", "TABLE"},
       {"object_full_path", options.table_name},
       {"operations", {"zerobuswrite"}}},
  });
  impl->body = "grant_type=client_credentials&scope=all-apis&resource=" +
               internal::FormEncode("api://databricks/workspaces/" + options.workspace_id +
                                    "/zerobusDirectWriteApi") +
               "&authorization_details=" + internal::FormEncode(details.dump());
  ARROW_ASSIGN_OR_RAISE(const std::string secret_hash,
                        internal::Sha256Hex(options.client_secret.Reveal()));
  const std::string key = base + "\n" + options.client_id + "\n" + secret_hash + "\n" +
                          LowerAscii(options.table_name);
  {
    std::lock_guard<std::mutex> lk(g_cache_mu);
    auto& slot = Cache()[key];
    if (!slot) slot = std::make_shared<CacheEntry>();
    impl->entry = slot;
  }
  impl->options = std::move(options);
  return std::shared_ptr<OAuthTokenSource>(new OAuthTokenSource(std::move(impl)));
}

arrow::Result<std::string> OAuthTokenSource::GetToken() {
  return GetToken(Clock::time_point::max());
}

arrow::Result<std::string> OAuthTokenSource::GetToken(Clock::time_point deadline) {
  CacheEntry& e = *impl_->entry;
  {
    std::lock_guard<std::mutex> lk(e.mu);
    if (!e.token.empty() && Clock::now() < e.refresh_at) return e.token;
  }
  std::lock_guard<std::mutex> fetch_lock(e.fetch_mu);
  bool had_token = false;
  {
    std::lock_guard<std::mutex> lk(e.mu);
    // Another caller may have refreshed while this one waited.
    if (!e.token.empty() && Clock::now() < e.refresh_at) return e.token;
    had_token = !e.token.empty();
  }
  const auto started = Clock::now();
  auto fetched = impl_->Fetch(internal::Deadline(deadline));
  std::lock_guard<std::mutex> lk(e.mu);
  if (!fetched.ok()) {
    // A failed early refresh: the cached token is still good for a while.
    if (!e.token.empty() && Clock::now() < e.expires_at) return e.token;
    const arrow::Status& st = fetched.status();
    if (had_token && GetErrorKind(st) != ErrorKind::kAuthentication) {
      return MakeError(ErrorKind::kTokenRefresh, IsRetryable(st),
                       "token refresh failed: " + st.message());
    }
    if (GetErrorKind(st) == ErrorKind::kConnection) {
      return MakeError(ErrorKind::kTokenRefresh, IsRetryable(st), st.message());
    }
    return st;
  }
  const auto lifetime = fetched->expires_in;
  // Refresh `refresh_margin` before expiry, but never sooner than half the lifetime (short
  // tokens would otherwise be refetched on every call).
  const auto early = std::max<std::chrono::seconds>(lifetime - impl_->options.refresh_margin,
                                                    lifetime / 2);
  e.token = std::move(fetched->token);
  e.expires_at = started + lifetime;
  e.refresh_at = started + early;
  return e.token;
}

void OAuthTokenSource::Invalidate(const std::string& token) {
  CacheEntry& e = *impl_->entry;
  std::lock_guard<std::mutex> lk(e.mu);
  if (token.empty() || token == e.token) {
    e.token.clear();
    e.refresh_at = e.expires_at = Clock::time_point();
  }
}

int64_t OAuthTokenSource::fetch_count() const { return impl_->fetches.load(); }

const OAuthOptions& OAuthTokenSource::options() const { return impl_->options; }

std::shared_ptr<HeadersProvider> MakeStaticHeadersProvider(Headers headers) {
  return std::make_shared<StaticHeadersProvider>(std::move(headers));
}

arrow::Result<std::shared_ptr<HeadersProvider>> MakeOAuthHeadersProvider(OAuthOptions options) {
  ARROW_ASSIGN_OR_RAISE(auto source, OAuthTokenSource::Make(std::move(options)));
  return MakeOAuthHeadersProvider(std::move(source));
}

std::shared_ptr<HeadersProvider> MakeOAuthHeadersProvider(
    std::shared_ptr<OAuthTokenSource> source) {
  return std::make_shared<OAuthHeadersProvider>(std::move(source));
}

arrow::Result<std::string> WorkspaceIdFromEndpoint(std::string_view endpoint) {
  ARROW_ASSIGN_OR_RAISE(auto ep, internal::ParseEndpoint(endpoint, "endpoint"));
  return ep.first_label();
}

void ClearTokenCache() {
  std::lock_guard<std::mutex> lk(g_cache_mu);
  for (auto& [key, entry] : Cache()) {
    std::lock_guard<std::mutex> elk(entry->mu);
    entry->token.clear();
    entry->refresh_at = entry->expires_at = Clock::time_point();
  }
}

}  // namespace arrow_zerobus
