// The one HTTP client (common/http_client.h): request shape, errors, timeouts, proxies, the Basic
// header, and the Unity Catalog tables API on top of it. The token endpoint's own tests are in
// tests/transport/auth_test.cc, the OTLP exporter's in tests/telemetry/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "client_test_util.h"
#include "common/http_client.h"
#include "common/secure_wipe_internal.h"

namespace arrow_zerobus::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Sets proxy variables for one test and restores a clean environment afterwards.
class ProxyEnv {
 public:
  ProxyEnv() { Clear(); }
  ~ProxyEnv() { Clear(); }
  void Set(const char* name, const std::string& value) { setenv(name, value.c_str(), 1); }

 private:
  static void Clear() {
    for (const char* v : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                          "no_proxy", "NO_PROXY"}) {
      unsetenv(v);
    }
  }
};

internal::HttpRequest Get(const std::string& url) {
  internal::HttpRequest r;
  r.url = url;
  r.post = false;
  r.timeout = milliseconds(2000);
  return r;
}

TEST(HttpClientTest, PostSendsHeadersBodyUserAgentAndAuthorization) {
  ScriptedHttpServer server({{201, R"({"ok":true})"}});
  internal::HttpRequest r;
  r.url = server.url() + "/some/path";
  r.headers = {{"Content-Type", "application/json"}, {"X-Extra", "1"}};
  r.body = R"({"a":1})";
  r.authorization = SecretString("Basic dXNlcjpwYXNz");
  r.user_agent = "test-agent/1";
  auto response = internal::HttpCall(r);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, R"({"ok":true})");
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string req = server.requests()[0];
  EXPECT_THAT(req, StartsWith("POST /some/path HTTP/1.1\r\n"));
  EXPECT_THAT(req, HasSubstr("\r\nContent-Type: application/json\r\n"));
  EXPECT_THAT(req, HasSubstr("\r\nX-Extra: 1\r\n"));
  EXPECT_THAT(req, HasSubstr("\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"));
  EXPECT_THAT(req, HasSubstr("\r\nUser-Agent: test-agent/1\r\n"));
  EXPECT_EQ(req.substr(req.find("\r\n\r\n") + 4), R"({"a":1})");
}

TEST(HttpClientTest, GetHasNoBodyAndErrorAnswersAreResponses) {
  ScriptedHttpServer server({{503, "busy"}});
  auto response = internal::HttpCall(Get(server.url() + "/x?y=1"));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->body, "busy");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0], StartsWith("GET /x?y=1 HTTP/1.1\r\n"));
  EXPECT_THAT(server.requests()[0], ::testing::EndsWith("\r\n\r\n"));
  EXPECT_THAT(server.requests()[0], ::testing::Not(HasSubstr("Authorization")));
}

TEST(HttpClientTest, TransportFailureIsARetryableConnectionErrorWithCurlsDetail) {
  const int port = ClosedPort();
  auto response = internal::HttpCall(Get("http://127.0.0.1:" + std::to_string(port) + "/"));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(GetErrorKind(response.status()), ErrorKind::kConnection);
  EXPECT_TRUE(IsRetryable(response.status()));
  EXPECT_THAT(response.status().message(), StartsWith("HTTP request failed: "));
  EXPECT_THAT(response.status().message(), HasSubstr("port " + std::to_string(port)));
}

TEST(HttpClientTest, TimeoutBoundsTheRequest) {
  SilentListener silent;
  auto r = Get("http://127.0.0.1:" + std::to_string(silent.port()) + "/");
  r.timeout = milliseconds(300);
  const auto start = Clock::now();
  auto response = internal::HttpCall(r);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(GetErrorKind(response.status()), ErrorKind::kConnection);
  EXPECT_LT(Clock::now() - start, milliseconds(3000));
}

TEST(HttpClientTest, CaFileDecidesWhichServerCertificateIsTrusted) {
  TempDir dir;
  std::string cert, key, other_cert, other_key;
  ASSERT_TRUE(MakeSelfSignedCert(dir.path(), "server", &cert, &key)) << "openssl CLI";
  ASSERT_TRUE(MakeSelfSignedCert(dir.path(), "other", &other_cert, &other_key));
  auto o = EmulatorTestOptions(dir.path() + "/data");
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  auto emu = StartEmulator(o);
  ASSERT_NE(emu, nullptr);
  ASSERT_THAT(emu->http_endpoint(), StartsWith("https://"));
  auto r = Get(emu->http_endpoint() + "/oidc/v1/token");
  r.ca_file = cert;
  auto trusted = internal::HttpCall(r);
  ASSERT_TRUE(trusted.ok()) << trusted.status().ToString();  // any HTTP answer will do
  r.ca_file = other_cert;
  auto untrusted = internal::HttpCall(r);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(GetErrorKind(untrusted.status()), ErrorKind::kConnection);
  r.ca_file = "";  // the system roots do not know a self-signed certificate either
  EXPECT_FALSE(internal::HttpCall(r).ok());
}

// Over plain http a proxy reads the whole request, credentials included; and a proxy elsewhere
// would reach its own loopback. So loopback always goes direct, whatever the variables say.
TEST(HttpClientTest, LoopbackIsNeverReachedThroughAProxy) {
  ProxyEnv env;
  ScriptedHttpServer proxy({{200, "proxy"}});
  ScriptedHttpServer server({{200, "direct"}});
  env.Set("http_proxy", proxy.url());
  env.Set("no_proxy", "example.com");  // the user's list is kept, loopback is added to it
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto response = internal::HttpCall(Get("http://" + host + ":" + std::to_string(server.port())));
    ASSERT_TRUE(response.ok()) << host << ": " << response.status().ToString();
    EXPECT_EQ(response->body, "direct") << host;
  }
  EXPECT_TRUE(proxy.requests().empty());
}

TEST(HttpClientTest, OtherHostsGoThroughTheProxyUnlessNoProxyIsStar) {
  ProxyEnv env;
  ScriptedHttpServer proxy({{200, "proxy"}});
  env.Set("http_proxy", proxy.url());
  env.Set("no_proxy", "example.com");
  auto response = internal::HttpCall(Get("http://collector.example.invalid:4318/v1/metrics"));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->body, "proxy");
  ASSERT_EQ(proxy.requests().size(), 1u);
  EXPECT_THAT(proxy.requests()[0],
              StartsWith("GET http://collector.example.invalid:4318/v1/metrics HTTP/1.1\r\n"));
  // "*" means no proxy for any host (curl honours it only on its own, not inside a list).
  env.Set("no_proxy", "*");
  auto direct = internal::HttpCall(Get("http://collector.example.invalid:4318/v1/metrics"));
  EXPECT_FALSE(direct.ok());  // the name does not resolve: it was not handed to the proxy
  EXPECT_EQ(proxy.requests().size(), 1u);
}

TEST(BasicAuthorizationTest, IsBase64OfUserColonPassword) {
  EXPECT_EQ(internal::BasicAuthorization("client-a", SecretString("secret-a-7f3c9e")).Reveal(),
            "Basic Y2xpZW50LWE6c2VjcmV0LWEtN2YzYzll");
  // A colon in the password is kept (only the user id may not hold one); bytes are UTF-8.
  EXPECT_EQ(internal::BasicAuthorization("sp-1", SecretString("p:ss/w\xc3\xb6rd+=")).Reveal(),
            "Basic c3AtMTpwOnNzL3fDtnJkKz0=");
  EXPECT_EQ(internal::BasicAuthorization("a", SecretString("b")).Reveal(), "Basic YTpi");
  EXPECT_EQ(internal::BasicAuthorization("a", SecretString("b")).ToString(), "***");
}

TEST(SecureWipeTest, ZeroesTheWholeBufferAndEmptiesTheString) {
  std::string s(100, 'x');
  s.resize(10);  // bytes past size() are still in the buffer
  const char* buffer = s.data();
  const size_t capacity = s.capacity();
  internal::SecureWipe(&s);
  EXPECT_TRUE(s.empty());
  ASSERT_EQ(s.data(), buffer);  // same buffer, still owned by `s`: safe to read
  for (size_t i = 0; i < capacity; ++i) ASSERT_EQ(buffer[i], '\0') << i;
}

TEST(IsLoopbackHostTest, OnlyTheLoopbackSpellingsThatAreUnambiguous) {
  for (const char* h : {"localhost", "LOCALHOST", "127.0.0.1", "127.255.0.9", "::1",
                        "0:0:0:0:0:0:0:1"}) {
    EXPECT_TRUE(internal::IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"", "localhost.", "localhost.example.com", "127.0.0.1.example.com",
                        "128.0.0.1", "10.0.0.1", "127.1", "0x7f.0.0.1", "2130706433", "::2",
                        "::ffff:127.0.0.1", "[::1]"}) {
    EXPECT_FALSE(internal::IsLoopbackHost(h)) << h;
  }
}

// The tables API carries a bearer token: like the token endpoint, a loopback server is reached
// directly even with a proxy configured.
TEST(UnityCatalogHttpTest, LoopbackTablesApiIsNeverReachedThroughAProxy) {
  ProxyEnv env;
  const std::string table = nlohmann::json{
      {"columns", {{{"name", "id"}, {"type_text", "bigint"}, {"nullable", false}},
                   {{"name", "name"}, {"type_text", "string"}}}}}.dump();
  ScriptedHttpServer proxy({{200, table}});
  ScriptedHttpServer server({{200, table}});
  env.Set("http_proxy", proxy.url());
  UnityCatalogOptions o = UnityCatalogOptions::Defaults();
  o.unity_catalog_url = server.url() + "/";
  o.table_name = "main.default.t";
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer tok"}});
  o.timeout = milliseconds(2000);
  auto descriptor = FetchUnityCatalogDescriptor(o);
  ASSERT_TRUE(descriptor.ok()) << descriptor.status().ToString();
  EXPECT_EQ(descriptor->field_size(), 2);
  EXPECT_TRUE(proxy.requests().empty());
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0],
              StartsWith("GET /api/2.1/unity-catalog/tables/main.default.t HTTP/1.1\r\n"));
  EXPECT_THAT(server.requests()[0], HasSubstr("\r\nauthorization: Bearer tok\r\n"));
}

}  // namespace
}  // namespace arrow_zerobus::testing
