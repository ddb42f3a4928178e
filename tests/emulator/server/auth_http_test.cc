// OAuth (token endpoint and the gRPC-side token check), the Unity Catalog tables endpoint and
// the admin API, over real loopback HTTP and gRPC.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/auth.h"
#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr const char* kTable = "main.default.rows";

std::string Basic(const std::string& id, const std::string& secret) {
  return "Basic " + Base64(id + ":" + secret);
}

json AuthorizationDetails(const std::string& table) {
  auto parts = *SplitTableName(table);
  return json::array(
      {{{"type", "unity_catalog_privileges"},
        {"privileges", {"USE CATALOG"}},
        {"object_type", "CATALOG"},
        {"object_full_path", parts.catalog}},
       {{"type", "unity_catalog_privileges"},
        {"privileges", {"USE SCHEMA"}},
        {"object_type", "SCHEMA"},
        {"object_full_path", parts.catalog + "." + parts.schema}},
       {{"type", "unity_catalog_privileges"},
        {"privileges", {"SELECT", "MODIFY"}},
        {"object_type", "TABLE"},
        {"object_full_path", table},
        {"operations", {"zerobuswrite"}}}});
}

std::string TokenForm(const std::string& details, const std::string& grant = "client_credentials",
                      const std::string& scope = "all-apis") {
  httplib::Params p = {
      {"grant_type", grant},
      {"scope", scope},
      {"resource", "api://databricks/workspaces/1234567890/zerobusDirectWriteApi"},
      {"authorization_details", details}};
  return httplib::detail::params_to_query_str(p);
}

class AuthHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(TestOptions(dir_.path())); }

  void Start(EmulatorOptions options) {
    if (emulator_) {
      ASSERT_TRUE(emulator_->Shutdown().ok());
    }
    emulator_ = std::make_unique<Emulator>(std::move(options));
    auto st = emulator_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<Client>("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
  }

  HttpResult RequestToken(const std::string& form, const std::string& auth) {
    return HttpPost(*emulator_, "/oidc/v1/token", form, "application/x-www-form-urlencoded",
                    {{"Authorization", auth}});
  }

  grpc::Status CreateWith(const std::string& authorization, const std::string& table = kTable) {
    return CreateStatus(*client_, authorization, table, CreateRequest(table, &desc_));
  }

  TempDir dir_;
  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<Client> client_;
  google::protobuf::DescriptorProto desc_ = RowDescriptor();
  RowEncoder enc_;
};

TEST_F(AuthHttpTest, TokenFromOAuthEndpointOpensAStream) {
  auto r = RequestToken(TokenForm(AuthorizationDetails(kTable).dump()),
                        Basic("test-client", "test-secret"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = json::parse(r.body);
  EXPECT_EQ(body["token_type"], "Bearer");
  EXPECT_EQ(body["expires_in"], 3600);
  std::string token = body["access_token"];
  EXPECT_GE(token.size(), 32u);

  auto call = OpenCreated(*client_, "Bearer " + token, kTable, &desc_);
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(1, "a", 1))));
  EXPECT_EQ(call.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(AuthHttpTest, TokenLifetimeComesFromOptions) {
  auto o = TestOptions(dir_.path());
  o.token_lifetime = std::chrono::seconds(77);
  Start(o);
  auto r = RequestToken(TokenForm(AuthorizationDetails(kTable).dump()),
                        Basic("test-client", "test-secret"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["expires_in"], 77);
}

TEST_F(AuthHttpTest, TokenEndpointRefusesBadRequests) {
  std::string good = TokenForm(AuthorizationDetails(kTable).dump());
  struct Case {
    std::string what, form, auth, content_type;
    int status;
    std::string error;
  };
  const std::string form_type = "application/x-www-form-urlencoded";
  std::vector<Case> cases = {
      {"wrong secret", good, Basic("test-client", "nope"), form_type, 401, "invalid_client"},
      {"unknown client", good, Basic("who", "test-secret"), form_type, 401, "invalid_client"},
      {"no basic auth", good, "", form_type, 401, "invalid_client"},
      {"bearer instead of basic", good, "Bearer x", form_type, 401, "invalid_client"},
      {"basic not base64", good, "Basic %%%", form_type, 401, "invalid_client"},
      {"json body", good, Basic("test-client", "test-secret"), "application/json", 400,
       "invalid_request"},
      {"wrong grant", TokenForm(AuthorizationDetails(kTable).dump(), "password"),
       Basic("test-client", "test-secret"), form_type, 400, "unsupported_grant_type"},
      {"wrong scope", TokenForm(AuthorizationDetails(kTable).dump(), "client_credentials", "sql"),
       Basic("test-client", "test-secret"), form_type, 400, "invalid_scope"},
      {"details not json", TokenForm("[{"), Basic("test-client", "test-secret"), form_type, 400,
       "invalid_request"},
      {"details wrong type", TokenForm(R"([{"type": "x", "object_type": "TABLE",
          "object_full_path": "a.b.c", "privileges": []}])"),
       Basic("test-client", "test-secret"), form_type, 400, "invalid_request"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto r = HttpPost(*emulator_, "/oidc/v1/token", c.form, c.content_type,
                      c.auth.empty() ? std::vector<std::pair<std::string, std::string>>{}
                                     : std::vector<std::pair<std::string, std::string>>{
                                           {"Authorization", c.auth}});
    EXPECT_EQ(r.status, c.status) << r.body;
    auto body = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body["error"], c.error);
    // The secret never comes back.
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("test-secret")));
  }
  // Resource must name the Zerobus API.
  httplib::Params p = {{"grant_type", "client_credentials"},
                       {"scope", "all-apis"},
                       {"resource", "api://elsewhere"},
                       {"authorization_details", AuthorizationDetails(kTable).dump()}};
  auto r = RequestToken(httplib::detail::params_to_query_str(p), Basic("test-client", "test-secret"));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("resource"));
}

TEST_F(AuthHttpTest, ParseAuthorizationDetailsNeedsCatalogAndSchemaGrants) {
  auto full = ParseAuthorizationDetails(AuthorizationDetails("A.B.C").dump());
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ(*full, std::set<std::string>{"a.b.c"});
  // Table object alone: no grant.
  json only_table = json::array({AuthorizationDetails("a.b.c")[2]});
  auto partial = ParseAuthorizationDetails(only_table.dump());
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(partial->empty());
  // Table without the zerobuswrite operation: no grant.
  json no_op = AuthorizationDetails("a.b.c");
  no_op[2].erase("operations");
  EXPECT_TRUE(ParseAuthorizationDetails(no_op.dump())->empty());
  auto bad = ParseAuthorizationDetails(R"([{"type": "unity_catalog_privileges"}])");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("authorization_details[0]"));
  auto bad_kind = ParseAuthorizationDetails(
      R"([{"type": "unity_catalog_privileges", "object_type": "VOLUME",
           "object_full_path": "a", "privileges": []}])");
  ASSERT_FALSE(bad_kind.ok());
  EXPECT_THAT(bad_kind.status().message(), HasSubstr("VOLUME"));
}

TEST_F(AuthHttpTest, StreamCreationAuthFailures) {
  grpc::Status st = CreateWith("");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("missing authorization"));

  st = CreateWith("Bearer not-a-token");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("invalid access token"));
  EXPECT_THAT(st.error_message(), ::testing::Not(HasSubstr("not-a-token")));

  st = CreateWith("Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ=");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("not a Bearer token"));

  std::string expired =
      "Bearer " + emulator_->tokens().IssueForTesting("test-client", {kTable},
                                                      std::chrono::seconds(0));
  st = CreateWith(expired);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("expired"));

  std::string other = BearerFor(*emulator_, "main.default.other");
  st = CreateWith(other);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("4024"));
  EXPECT_THAT(st.error_message(), HasSubstr(kTable));

  // A token from the endpoint without authorization_details grants no table.
  httplib::Params p = {{"grant_type", "client_credentials"}, {"scope", "all-apis"}};
  auto r = RequestToken(httplib::detail::params_to_query_str(p), Basic("test-client", "test-secret"));
  ASSERT_EQ(r.status, 200) << r.body;
  st = CreateWith("Bearer " + json::parse(r.body)["access_token"].get<std::string>());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuthHttpTest, GrantsAreCaseInsensitive) {
  grpc::Status st = CreateWith(BearerFor(*emulator_, "MAIN.Default.ROWS"));
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AuthHttpTest, NoAuthAcceptsStreamsWithoutToken) {
  auto o = TestOptions(dir_.path());
  o.no_auth = true;
  o.principals.clear();
  Start(o);
  grpc::Status st = CreateWith("");
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(AuthHttpTest, AuthOnWithoutPrincipalsIsAConfigurationError) {
  auto o = TestOptions(dir_.path());
  o.principals.clear();
  Emulator e(o);
  auto st = e.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("no principal"));
}

TEST_F(AuthHttpTest, PortsInUseAreReported) {
  TempDir other;
  auto o = TestOptions(other.path());
  o.grpc_port = emulator_->grpc_port();
  Emulator grpc_clash(o);
  auto st = grpc_clash.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("gRPC side: cannot listen on 127.0.0.1:" +
                                      std::to_string(emulator_->grpc_port())));
  o.grpc_port = 0;
  o.http_port = emulator_->http_port();
  Emulator http_clash(o);
  st = http_clash.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("HTTP side: cannot bind 127.0.0.1:" +
                                      std::to_string(emulator_->http_port())));
  // The running emulator is unaffected.
  EXPECT_TRUE(CreateWith(BearerFor(*emulator_, kTable)).ok());
}

TEST_F(AuthHttpTest, UnityCatalogTablesEndpoint) {
  // Create the table through a stream.
  ASSERT_TRUE(CreateWith(BearerFor(*emulator_, kTable)).ok());
  std::string bearer = BearerFor(*emulator_, kTable);
  auto r = HttpGet(*emulator_, std::string("/api/2.1/unity-catalog/tables/") + kTable, bearer);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = json::parse(r.body);
  EXPECT_EQ(body["full_name"], kTable);
  EXPECT_EQ(body["catalog_name"], "main");
  EXPECT_EQ(body["schema_name"], "default");
  EXPECT_EQ(body["name"], "rows");
  ASSERT_EQ(body["columns"].size(), 3u);
  const auto& id = body["columns"][0];
  EXPECT_EQ(id["name"], "id");
  EXPECT_EQ(id["type_name"], "LONG");
  EXPECT_EQ(id["type_text"], "bigint");
  EXPECT_EQ(id["nullable"], false);
  EXPECT_EQ(id["position"], 0);
  EXPECT_TRUE(id.contains("type_json"));
  EXPECT_EQ(body["columns"][1]["name"], "name");
  EXPECT_EQ(body["columns"][1]["type_text"], "string");
  EXPECT_EQ(body["columns"][1]["nullable"], true);
  EXPECT_EQ(body["columns"][2]["type_name"], "DOUBLE");

  r = HttpGet(*emulator_, "/api/2.1/unity-catalog/tables/main.default.missing", bearer);
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("TABLE_DOES_NOT_EXIST"));
  r = HttpGet(*emulator_, "/api/2.1/unity-catalog/tables/notthree", bearer);
  EXPECT_EQ(r.status, 400);
  r = HttpGet(*emulator_, std::string("/api/2.1/unity-catalog/tables/") + kTable);
  EXPECT_EQ(r.status, 401);
  r = HttpGet(*emulator_, std::string("/api/2.1/unity-catalog/tables/") + kTable, "Bearer junk");
  EXPECT_EQ(r.status, 401);
}

// A name that percent-decodes to characters no table name holds (0xFF is not even UTF-8) is a
// malformed name: 400 with Databricks' JSON error ({"error_code", "message"}), not an empty 500.
TEST_F(AuthHttpTest, UnityCatalogRefusesMalformedNamesWithAJsonReason) {
  std::string bearer = BearerFor(*emulator_, kTable);
  for (const char* name : {"main.qa.%FF", "main.qa.bad-name", "main.q%20a.t"}) {
    SCOPED_TRACE(name);
    auto r = HttpGet(*emulator_, std::string("/api/2.1/unity-catalog/tables/") + name, bearer);
    EXPECT_EQ(r.status, 400);
    auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(body.is_object()) << "body: '" << r.body << "'";
    EXPECT_EQ(body["error_code"], "INVALID_PARAMETER_VALUE");
    ASSERT_TRUE(body["message"].is_string());
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr("letters, digits and underscores"));
  }
  // A well-formed name of a table that does not exist is still 404.
  auto r = HttpGet(*emulator_, "/api/2.1/unity-catalog/tables/main.qa.missing", bearer);
  EXPECT_EQ(r.status, 404);
  auto body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body["error_code"], "TABLE_DOES_NOT_EXIST");
  EXPECT_THAT(body["message"].get<std::string>(), HasSubstr("main.qa.missing"));
}

// Clients that send half a request and then stall must not hold up anyone else: with 64 of
// them connected the token endpoint still answers at once, and each of them gets its 400 once
// the server's read timeout passes without more bytes.
TEST_F(AuthHttpTest, HalfSentRequestsDoNotStallTheTokenEndpoint) {
  struct Sockets {
    std::vector<int> fds;
    ~Sockets() {
      for (int fd : fds) close(fd);
    }
  } slow;
  const std::string half =
      "POST /oidc/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n";  // no end
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 64; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    slow.fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(emulator_->http_port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << i;
    ASSERT_EQ(send(fd, half.data(), half.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(half.size()));
  }
  auto sent = std::chrono::steady_clock::now();
  // The burst is taken in at once: no connection was dropped from a full listen backlog and
  // retried by TCP a second later.
  EXPECT_LT(sent - start, std::chrono::seconds(1));

  auto r = RequestToken(TokenForm(AuthorizationDetails(kTable).dump()),
                        Basic("test-client", "test-secret"));
  auto took = std::chrono::steady_clock::now() - sent;
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(took, std::chrono::milliseconds(1500));

  // Each stalled request is given up after the read timeout (3 s, below httplib's default of
  // 5 s) with a 400, all at about the same time: none waited for a thread.
  auto deadline = sent + std::chrono::milliseconds(4500);
  int answered = 0;
  for (int fd : slow.fds) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) != 1) continue;
    char buf[64] = {};
    if (recv(fd, buf, sizeof(buf) - 1, 0) > 0 && std::string(buf).starts_with("HTTP/1.1 400")) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, 64);
}

TEST_F(AuthHttpTest, AdminStatsCountRowsBytesCommitsAndAcks) {
  auto call = OpenCreated(*client_, BearerFor(*emulator_, kTable), kTable, &desc_);
  int64_t bytes = 0;
  for (int i = 0; i < 4; ++i) {
    std::string rec = enc_.Encode(i, "s", i);
    bytes += static_cast<int64_t>(rec.size());
    ASSERT_TRUE(call.Write(ProtoRecord(i, rec)));
  }
  EXPECT_EQ(call.ReadAcksUntil(3).back(), 3);
  auto r = HttpGet(*emulator_, "/admin/stats");
  ASSERT_EQ(r.status, 200);
  auto stats = json::parse(r.body);
  ASSERT_EQ(stats["streams"].size(), 1u);
  const auto& s = stats["streams"][0];
  EXPECT_EQ(s["table"], kTable);
  EXPECT_EQ(s["requests"], 4);
  EXPECT_EQ(s["rows"], 4);
  EXPECT_EQ(s["bytes"], bytes);
  EXPECT_GE(s["acks"].get<int64_t>(), 1);
  EXPECT_EQ(s["last_ack_offset"], 3);
  EXPECT_EQ(s["open"], true);
  EXPECT_EQ(stats["open_streams"], 1);
  ASSERT_EQ(stats["tables"].size(), 1u);
  const auto& t = stats["tables"][0];
  EXPECT_EQ(t["name"], kTable);
  EXPECT_EQ(t["rows"], 4);
  EXPECT_EQ(t["bytes"], bytes);
  EXPECT_GE(t["commits"].get<int64_t>(), 1);
  EXPECT_EQ(t["acks"], s["acks"]);
  EXPECT_TRUE(call.Close().ok());
  ASSERT_TRUE(WaitForStreamsEnded(*emulator_));
  stats = json::parse(HttpGet(*emulator_, "/admin/stats").body);
  EXPECT_EQ(stats["streams"][0]["open"], false);
  EXPECT_EQ(stats["streams"][0]["status_code"], 0);
}

TEST_F(AuthHttpTest, AdminFaultsValidateTheirInput) {
  auto bad = HttpPost(*emulator_, "/admin/faults", "{not json", "application/json");
  EXPECT_EQ(bad.status, 400);
  bad = HttpPost(*emulator_, "/admin/faults", R"({"ack_delay": 5})", "application/json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("ack_delay"));
  bad = HttpPost(*emulator_, "/admin/faults", R"({"end_stream": {"code": "NOPE"}})",
                 "application/json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("end_stream.code"));
  bad = HttpPost(*emulator_, "/admin/faults", R"({"table": "x.y", "withhold_acks": true})",
                 "application/json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("three parts"));
  bad = HttpPost(*emulator_, "/admin/faults", R"({"ack_delay_ms": -1})", "application/json");
  EXPECT_EQ(bad.status, 400);
  // Nothing was applied by the refused requests.
  EXPECT_TRUE(emulator_->faults().Rules().empty());

  auto ok = HttpPost(*emulator_, "/admin/faults",
                     R"([{"ack_delay_ms": 5}, {"table": "a.b.c", "end_stream": {"after_requests": 2,
                         "code": "INTERNAL", "message": "boom"}, "times": 1}])",
                     "application/json");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["ids"].size(), 2u);
  auto list = json::parse(HttpGet(*emulator_, "/admin/faults").body);
  ASSERT_EQ(list["rules"].size(), 2u);
  EXPECT_EQ(list["rules"][1]["end_stream"]["code"], "INTERNAL");
  EXPECT_EQ(list["rules"][1]["table"], "a.b.c");
  ASSERT_EQ(HttpDelete(*emulator_, "/admin/faults").status, 200);
  EXPECT_TRUE(emulator_->faults().Rules().empty());
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
