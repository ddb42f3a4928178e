// OAuth client credentials: against the emulator's token endpoint (real flow) and a scripted
// HTTP server (to see exactly what is sent and to make the endpoint fail on purpose).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "client_test_util.h"
#include "server/auth.h"

namespace arrow_zerobus::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "main.client.rows";

OAuthOptions Options(const std::string& url, const std::string& table = kTable) {
  OAuthOptions o = OAuthOptions::Defaults();
  o.unity_catalog_url = url;
  o.client_id = kClientId;
  o.client_secret = SecretString(kClientSecret);
  o.table_name = table;
  o.workspace_id = "6051921418418893";
  o.max_attempts = 3;
  o.retry_backoff = milliseconds(5);
  o.request_timeout = milliseconds(2000);
  return o;
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseForm(const std::string& body) {
  std::map<std::string, std::string> form;
  size_t start = 0;
  while (start <= body.size()) {
    size_t amp = body.find('&', start);
    std::string kv = body.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = kv.find('=');
    form[UrlDecode(kv.substr(0, eq))] = UrlDecode(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return form;
}

std::string TokenReply(const std::string& token, int expires_in = 3600) {
  return nlohmann::json{{"access_token", token}, {"token_type", "Bearer"}, {"expires_in", expires_in}}
      .dump();
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { ClearTokenCache(); }
  void TearDown() override { ClearTokenCache(); }
};

TEST_F(AuthTest, RequestIsExactlyTheClientCredentialsGrant) {
  ScriptedHttpServer server({{200, TokenReply("tok-1")}});
  auto source = OAuthTokenSource::Make(Options(server.url() + "/"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto token = (*source)->GetToken();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "tok-1");
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string req = server.requests()[0];
  EXPECT_EQ(req.rfind("POST /oidc/v1/token HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_THAT(req, ::testing::HasSubstr("Authorization: Basic " +
                                        Base64(std::string(kClientId) + ":" +
                                                                 kClientSecret)));
  EXPECT_THAT(req, ::testing::HasSubstr("Content-Type: application/x-www-form-urlencoded"));
  EXPECT_THAT(req, ::testing::HasSubstr("User-Agent: arrow-zerobus/"));
  auto form = ParseForm(req.substr(req.find("\r\n\r\n") + 4));
  EXPECT_EQ(form["grant_type"], "client_credentials");
  EXPECT_EQ(form["scope"], "all-apis");
  EXPECT_EQ(form["resource"], "api://databricks/workspaces/6051921418418893/zerobusDirectWriteApi");
  auto details = nlohmann::json::parse(form["authorization_details"]);
  ASSERT_TRUE(details.is_array());
  ASSERT_EQ(details.size(), 3u);
  const nlohmann::json expected = nlohmann::json::parse(R"([
    {"type":"unity_catalog_privileges","privileges":["USE CATALOG"],"object_type":"CATALOG",
     "object_full_path":"main"},
    {"type":"unity_catalog_privileges","privileges":["USE SCHEMA"],"object_type":"SCHEMA",
     "object_full_path":"main.client"},
    {"type":"unity_catalog_privileges","privileges":["SELECT","MODIFY"],"object_type":"TABLE",
     "object_full_path":"main.client.rows","operations":["zerobuswrite"]}])");
  EXPECT_EQ(details, expected);
  // The secret travels only in the Authorization header, never in the body.
  EXPECT_EQ(req.find(kClientSecret), std::string::npos);
}

TEST_F(AuthTest, ServerErrorsAreRetriedThenSucceed) {
  ScriptedHttpServer server({{500, R"({"error":"temporarily_unavailable"})"},
                             {503, "oops"},
                             {200, TokenReply("tok-after-retry")}});
  auto source = *OAuthTokenSource::Make(Options(server.url()));
  auto token = source->GetToken();
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "tok-after-retry");
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_EQ(source->fetch_count(), 1);
}

TEST_F(AuthTest, ServerErrorsThatDoNotStopAreATokenRefreshError) {
  ScriptedHttpServer server({{502, R"({"error":"bad_gateway","error_description":"upstream"})"}});
  auto source = *OAuthTokenSource::Make(Options(server.url()));
  auto token = source->GetToken();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(GetErrorKind(token.status()), ErrorKind::kTokenRefresh);
  EXPECT_TRUE(IsRetryable(token.status()));
  EXPECT_THAT(token.status().message(), ::testing::HasSubstr("HTTP 502: bad_gateway: upstream"));
  EXPECT_THAT(token.status().message(), ::testing::HasSubstr("after 3 attempts"));
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(AuthTest, ClientErrorsAreAuthenticationErrorsAndNotRetried) {
  ScriptedHttpServer server(
      {{401, R"({"error":"invalid_client","error_description":"bad secret"})"}});
  auto source = *OAuthTokenSource::Make(Options(server.url()));
  auto token = source->GetToken();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(GetErrorKind(token.status()), ErrorKind::kAuthentication);
  EXPECT_FALSE(IsRetryable(token.status()));
  EXPECT_THAT(token.status().message(), ::testing::HasSubstr("HTTP 401: invalid_client: bad secret"));
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(token.status().ToString().find(kClientSecret), std::string::npos);
}

TEST_F(AuthTest, NetworkErrorsAreATokenRefreshError) {
  auto o = Options("http://127.0.0.1:" + std::to_string(ClosedPort()));
  o.max_attempts = 2;
  auto token = (*OAuthTokenSource::Make(o))->GetToken();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(GetErrorKind(token.status()), ErrorKind::kTokenRefresh);
  EXPECT_TRUE(IsRetryable(token.status()));
  EXPECT_THAT(token.status().message(), ::testing::HasSubstr("after 2 attempts"));
}

TEST_F(AuthTest, MalformedTokenResponsesAreRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "non-JSON"},
      {R"({"token_type":"Bearer"})", "without an access_token"},
      {R"({"access_token":""})", "without an access_token"},
      {R"({"access_token":"t","token_type":"mac"})", "token_type 'mac'"},
      {R"({"access_token":"t","expires_in":-5})", "invalid expires_in"},
  };
  for (const auto& [body, why] : cases) {
    ClearTokenCache();
    ScriptedHttpServer server({{200, body}});
    auto token = (*OAuthTokenSource::Make(Options(server.url())))->GetToken();
    ASSERT_FALSE(token.ok()) << body;
    EXPECT_EQ(GetErrorKind(token.status()), ErrorKind::kAuthentication) << body;
    EXPECT_THAT(token.status().message(), ::testing::HasSubstr(why)) << body;
  }
}

// Lifetimes as floats, huge or fractional, are bounded before any time arithmetic: a float
// beyond int64 would otherwise be undefined behaviour to convert.
TEST_F(AuthTest, TokenLifetimesOfAnyNumericFormAreBounded) {
  for (const char* body : {R"({"access_token":"t1","expires_in":1e300})",
                           R"({"access_token":"t2","expires_in":18446744073709551615})",
                           R"({"access_token":"t3","expires_in":3599.9})"}) {
    ClearTokenCache();
    ScriptedHttpServer server({{200, body}});
    auto source = *OAuthTokenSource::Make(Options(server.url()));
    auto token = source->GetToken();
    ASSERT_TRUE(token.ok()) << body << ": " << token.status().ToString();
    // Cached (not expired at once, no overflow into the past): a second call does not fetch.
    ASSERT_TRUE(source->GetToken().ok());
    EXPECT_EQ(source->fetch_count(), 1) << body;
  }
  ClearTokenCache();
  ScriptedHttpServer tiny({{200, R"({"access_token":"t","expires_in":0.5})"}});
  auto refused = (*OAuthTokenSource::Make(Options(tiny.url())))->GetToken();
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("invalid expires_in"));
}

TEST_F(AuthTest, TokensAreCachedPerClientSecretAndTable) {
  TempDir dir;
  auto emu = StartEmulator(EmulatorTestOptions(dir.path()));
  ASSERT_NE(emu, nullptr);
  auto a = *OAuthTokenSource::Make(Options(emu->http_endpoint()));
  auto b = *OAuthTokenSource::Make(Options(emu->http_endpoint()));
  auto other_table = *OAuthTokenSource::Make(Options(emu->http_endpoint(), "main.client.other"));
  auto t1 = a->GetToken();
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(*a->GetToken(), *t1);
  EXPECT_EQ(*b->GetToken(), *t1);  // same key: shared, no second fetch
  EXPECT_EQ(a->fetch_count() + b->fetch_count(), 1);
  auto t3 = other_table->GetToken();
  ASSERT_TRUE(t3.ok());
  EXPECT_NE(*t3, *t1);
  EXPECT_EQ(emu->Stats()["tokens_issued"].get<int64_t>(), 2);
  // A different secret is a different key: it fetches (and here is refused).
  auto wrong = Options(emu->http_endpoint());
  wrong.client_secret = SecretString("not-the-secret");
  auto w = (*OAuthTokenSource::Make(wrong))->GetToken();
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(GetErrorKind(w.status()), ErrorKind::kAuthentication);
  EXPECT_THAT(w.status().message(), ::testing::HasSubstr("401"));
  EXPECT_EQ(w.status().ToString().find("not-the-secret"), std::string::npos);
  // Invalidate drops only the token it names.
  a->Invalidate("some-other-token");
  EXPECT_EQ(*b->GetToken(), *t1);
  a->Invalidate(*t1);
  auto t4 = b->GetToken();
  ASSERT_TRUE(t4.ok());
  EXPECT_NE(*t4, *t1);
}

TEST_F(AuthTest, TokenIsRefreshedBeforeItExpires) {
  ScriptedHttpServer server({{200, TokenReply("short-1", 2)}, {200, TokenReply("short-2", 2)}});
  auto source = *OAuthTokenSource::Make(Options(server.url()));
  EXPECT_EQ(*source->GetToken(), "short-1");
  EXPECT_EQ(*source->GetToken(), "short-1");
  // Lifetime 2 s with a 300 s margin: refreshed after half the lifetime, before expiry.
  std::this_thread::sleep_for(milliseconds(1100));
  EXPECT_EQ(*source->GetToken(), "short-2");
  EXPECT_EQ(source->fetch_count(), 2);
}

TEST_F(AuthTest, FailedEarlyRefreshKeepsTheValidTokenThenFails) {
  ScriptedHttpServer server({{200, TokenReply("only", 2)}, {503, "down"}});
  auto o = Options(server.url());
  o.max_attempts = 1;
  auto source = *OAuthTokenSource::Make(o);
  EXPECT_EQ(*source->GetToken(), "only");
  std::this_thread::sleep_for(milliseconds(1100));
  // Refresh fails but the token has not expired: still handed out.
  EXPECT_EQ(*source->GetToken(), "only");
  std::this_thread::sleep_for(milliseconds(1000));
  auto expired = source->GetToken();
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(GetErrorKind(expired.status()), ErrorKind::kTokenRefresh);
  EXPECT_THAT(expired.status().message(), ::testing::HasSubstr("token refresh failed"));
}

TEST_F(AuthTest, OptionsAreValidatedNamingTheOption) {
  const std::vector<std::pair<std::function<void(OAuthOptions&)>, std::string>> cases = {
      {[](OAuthOptions& o) { o.unity_catalog_url = ""; }, "unity_catalog_url is required"},
      {[](OAuthOptions& o) { o.unity_catalog_url = "ftp://x"; }, "unity_catalog_url 'ftp://x'"},
      {[](OAuthOptions& o) { o.unity_catalog_url = "https://"; }, "has no host"},
      {[](OAuthOptions& o) { o.unity_catalog_url = "https://a b"; }, "whitespace"},
      {[](OAuthOptions& o) { o.client_id = ""; }, "client_id is required"},
      {[](OAuthOptions& o) { o.client_secret = SecretString(); }, "client_secret is required"},
      {[](OAuthOptions& o) { o.table_name = "a.b"; }, "table_name 'a.b'"},
      {[](OAuthOptions& o) { o.table_name = "a..c"; }, "three-part"},
      {[](OAuthOptions& o) { o.workspace_id = ""; }, "workspace_id is required"},
      {[](OAuthOptions& o) { o.max_attempts = 0; }, "max_attempts must be at least 1"},
      {[](OAuthOptions& o) { o.request_timeout = milliseconds(0); }, "request_timeout"},
      {[](OAuthOptions& o) { o.refresh_margin = std::chrono::seconds(-1); }, "refresh_margin"},
  };
  for (const auto& [mutate, why] : cases) {
    OAuthOptions o = Options("https://ws.cloud.databricks.com");
    mutate(o);
    auto st = o.Validate();
    ASSERT_FALSE(st.ok()) << why;
    EXPECT_EQ(GetErrorKind(st), ErrorKind::kConfiguration);
    EXPECT_THAT(st.message(), ::testing::HasSubstr(why));
    EXPECT_FALSE(OAuthTokenSource::Make(o).ok());
  }
}

TEST_F(AuthTest, WorkspaceIdIsTheFirstLabelOfTheEndpoint) {
  EXPECT_EQ(*WorkspaceIdFromEndpoint("https://6051921418418893.zerobus.us-west-2.cloud.databricks.com"),
            "6051921418418893");
  EXPECT_EQ(*WorkspaceIdFromEndpoint("adb-1.zerobus.eastus.azuredatabricks.net:443"), "adb-1");
  EXPECT_FALSE(WorkspaceIdFromEndpoint("ftp://x").ok());
}

TEST_F(AuthTest, StaticHeadersProviderAndOAuthProviderHeaders) {
  auto s = MakeStaticHeadersProvider({{"authorization", "Bearer abc"}, {"x-proxy", "1"}});
  auto h = s->GetHeaders();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->size(), 2u);
  ScriptedHttpServer server({{200, TokenReply("tok-x")}});
  auto p = MakeOAuthHeadersProvider(Options(server.url()));
  ASSERT_TRUE(p.ok());
  auto oh = (*p)->GetHeaders();
  ASSERT_TRUE(oh.ok());
  EXPECT_EQ(*oh, (Headers{{"authorization", "Bearer tok-x"}}));
}

// The client secret travels in the request's Authorization header: over plain http only to this
// machine. A wrong URL is refused when the source is made, before any request.
TEST_F(AuthTest, PlainHttpTokenEndpointIsOnlyAllowedOnLoopback) {
  for (const char* url : {"http://127.0.0.1:1", "http://127.8.9.10", "http://[::1]:8080/",
                          "http://localhost", "http://LocalHost:99/x", "https://uc.example.com",
                          "https://10.0.0.1:8443"}) {
    auto source = OAuthTokenSource::Make(Options(url));
    EXPECT_TRUE(source.ok()) << url << ": " << source.status().ToString();
  }
  for (const char* url :
       {"http://uc.example.com", "http://10.0.0.1:8080", "http://128.0.0.1", "http://[::2]",
        "http://localhost.example.com", "http://127.0.0.1.example.com", "http://127.1",
        "http://2130706433", "http://[::ffff:127.0.0.1]"}) {
    auto source = OAuthTokenSource::Make(Options(url));
    ASSERT_FALSE(source.ok()) << url;
    EXPECT_EQ(GetErrorKind(source.status()), ErrorKind::kConfiguration) << url;
    EXPECT_THAT(source.status().message(), ::testing::HasSubstr("unity_catalog_url"));
    EXPECT_THAT(source.status().message(), ::testing::HasSubstr("in clear"));
    EXPECT_THAT(source.status().message(), ::testing::HasSubstr("https://"));
    EXPECT_FALSE(MakeOAuthHeadersProvider(Options(url)).ok()) << url;
  }
  // Credentials in the URL would hide the real host ("http://127.0.0.1@evil") and would be
  // quoted in errors: refused, without echoing them.
  for (const char* url : {"http://127.0.0.1@uc.example.com", "https://user:hunter2@uc.example.com"}) {
    auto source = OAuthTokenSource::Make(Options(url));
    ASSERT_FALSE(source.ok()) << url;
    EXPECT_EQ(GetErrorKind(source.status()), ErrorKind::kConfiguration) << url;
    EXPECT_THAT(source.status().message(), ::testing::HasSubstr("unity_catalog_url"));
    EXPECT_EQ(source.status().ToString().find("hunter2"), std::string::npos);
  }
}

// The wrapper makes its OAuth provider in Make: the refusal comes from there, naming the option.
TEST_F(AuthTest, WrapperRefusesAPlainHttpTokenEndpointWhenMade) {
  WrapperConfiguration c = WrapperConfiguration::Make(
      "https://6051921418418893.zerobus.us-west-2.cloud.databricks.com", kTable);
  c.client_id = kClientId;
  c.client_secret = SecretString(kClientSecret);
  c.unity_catalog_url = "http://uc.example.com";
  auto wrapper = ZerobusWrapper::Make(c);
  ASSERT_FALSE(wrapper.ok());
  EXPECT_EQ(GetErrorKind(wrapper.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(wrapper.status().message(), ::testing::HasSubstr("unity_catalog_url"));
  EXPECT_THAT(wrapper.status().message(), ::testing::HasSubstr("in clear"));
  EXPECT_EQ(wrapper.status().ToString().find(kClientSecret), std::string::npos);
}

// The secret stays a SecretString from the configuration to where the Basic header is built.
TEST_F(AuthTest, ClientSecretIsKeptAsASecretString) {
  static_assert(std::is_same_v<decltype(OAuthOptions::client_secret), SecretString>);
  auto source = OAuthTokenSource::Make(Options("https://uc.example.com"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::ostringstream shown;
  shown << (*source)->options().client_secret;
  EXPECT_EQ(shown.str(), "***");
}

// Over plain http a proxy would read the Basic credentials: loopback is always reached directly,
// whatever the proxy variables say.
TEST_F(AuthTest, LoopbackTokenEndpointIsNeverReachedThroughAProxy) {
  ScriptedHttpServer proxy({{200, TokenReply("via-proxy")}});
  ScriptedHttpServer server({{200, TokenReply("direct")}});
  setenv("http_proxy", proxy.url().c_str(), 1);
  setenv("no_proxy", "example.com", 1);  // a user's own list does not undo it
  auto token = (*OAuthTokenSource::Make(Options(server.url())))->GetToken();
  unsetenv("http_proxy");
  unsetenv("no_proxy");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "direct");
  EXPECT_TRUE(proxy.requests().empty());
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(AuthTest, CurlHonoursTheHttpsProxyVariable) {
  // A remote token endpoint is https: curl tunnels through the proxy with CONNECT, so the proxy
  // sees the host and port, never the credentials. Nothing listens behind it here (the proxy
  // answers 502), which is enough to see the request went to it.
  ConnectProxy proxy;
  const std::string port = std::to_string(ClosedPort());
  setenv("https_proxy", proxy.url().c_str(), 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  auto o = Options("https://uc.example.invalid:" + port);
  o.max_attempts = 1;
  auto token = (*OAuthTokenSource::Make(o))->GetToken();
  unsetenv("https_proxy");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(GetErrorKind(token.status()), ErrorKind::kTokenRefresh) << token.status().ToString();
  EXPECT_EQ(proxy.targets(), std::vector<std::string>{"uc.example.invalid:" + port});
}

}  // namespace
}  // namespace arrow_zerobus::testing
