// Endpoint URL parsing (common/endpoint.h): the accepted forms, and refusals that name the
// problem and show the value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/endpoint.h"

namespace arrow_zerobus::internal {
namespace {

TEST(EndpointTest, ParsesTheAcceptedForms) {
  auto e = ParseEndpoint("1234.zerobus.us-west-2.cloud.databricks.com");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->target(), "1234.zerobus.us-west-2.cloud.databricks.com:443");
  EXPECT_EQ(e->first_label(), "1234");
  e = ParseEndpoint("https://ws.zerobus.eastus.azuredatabricks.net:8443/");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->port, 8443);
  e = ParseEndpoint("HTTP://127.0.0.1:5000");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->target(), "127.0.0.1:5000");
  e = ParseEndpoint("http://[::1]:9000");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->target(), "[::1]:9000");
  EXPECT_EQ(ParseEndpoint("http://localhost")->port, 80);
}

TEST(EndpointTest, RejectsBadUrlsNamingTheProblem) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "endpoint is empty"},
      {"ftp://h:21", "only https:// and http://"},
      {"https://", "has no host"},
      {"https://:443", "has no host"},
      {"https://h:0", "invalid port"},
      {"https://h:65536", "invalid port"},
      {"https://h:12ab", "invalid port"},
      {"https://h:", "empty port"},
      {"https://h/v1/path", "must not have a path"},
      {"https://h?x=1", "must not have a path, query"},
      {"https://user:pw@h", "user info"},
      {"https://h h", "whitespace"},
      {"https://h\tx", "whitespace"},
      {"http://[::1", "unclosed"},
      {"http://[::1]x", "junk after"},
      {"https://h%20x", "invalid character"},
  };
  for (const auto& [url, why] : bad) {
    auto e = ParseEndpoint(url);
    ASSERT_FALSE(e.ok()) << url;
    EXPECT_THAT(e.status().message(), ::testing::HasSubstr(why)) << url;
    if (!url.empty()) EXPECT_THAT(e.status().message(), ::testing::HasSubstr("'" + url + "'"));
  }
}

}  // namespace
}  // namespace arrow_zerobus::internal
