// Connection setup: option checks, bad endpoints, unreachable and silent hosts, TLS with the
// right and wrong CA, wrong credentials, wrong table, proxies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "arrow_zerobus/errors.h"
#include "client_test_util.h"
#include "server/auth.h"

namespace arrow_zerobus::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "main.client.rows";

// Options for a server that is not there or misbehaves: fail fast.
StreamOptions Unreachable(const std::string& endpoint) {
  StreamOptions o = StreamOptions::Defaults();
  o.endpoint = endpoint;
  o.table_name = kTable;
  o.descriptor = RowDescriptorFor();
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer x"}});
  o.recovery_timeout = milliseconds(500);
  o.recovery_backoff = milliseconds(10);
  o.recovery_backoff_max = milliseconds(20);
  o.recovery_retries = 1;
  return o;
}

TEST(StreamOptionsTest, EveryBadOptionIsAConfigurationErrorNamingIt) {
  const std::vector<std::pair<std::function<void(StreamOptions&)>, std::string>> cases = {
      {[](StreamOptions& o) { o.endpoint = ""; }, "endpoint is empty"},
      {[](StreamOptions& o) { o.endpoint = "grpc://h:1"; }, "endpoint 'grpc://h:1'"},
      {[](StreamOptions& o) { o.table_name = "rows"; }, "table_name 'rows'"},
      {[](StreamOptions& o) { o.table_name = "a..b"; }, "table_name 'a..b'"},
      {[](StreamOptions& o) { o.table_name = "a.b.c.d"; }, "three-part"},
      {[](StreamOptions& o) { o.table_name = "a.b. c"; }, "three-part"},
      {[](StreamOptions& o) { o.descriptor.reset(); }, "descriptor is required"},
      {[](StreamOptions& o) { o.descriptor = DescriptorProto(); }, "has no fields"},
      {[](StreamOptions& o) { o.headers_provider.reset(); }, "headers_provider is required"},
      {[](StreamOptions& o) { o.application_name = "bad\nname"; }, "application_name"},
      {[](StreamOptions& o) { o.max_inflight_requests = 0; }, "max_inflight_requests"},
      {[](StreamOptions& o) { o.max_inflight_bytes = -1; }, "max_inflight_bytes"},
      {[](StreamOptions& o) { o.block_timeout = milliseconds(0); }, "block_timeout"},
      {[](StreamOptions& o) { o.recovery_timeout = milliseconds(-1); }, "recovery_timeout"},
      {[](StreamOptions& o) { o.server_lack_of_ack_timeout = milliseconds(0); },
       "server_lack_of_ack_timeout"},
      {[](StreamOptions& o) { o.flush_timeout = milliseconds(0); }, "flush_timeout"},
      {[](StreamOptions& o) { o.recovery_backoff = milliseconds(-5); }, "recovery_backoff"},
      {[](StreamOptions& o) { o.recovery_backoff_max = milliseconds(1); }, "recovery_backoff_max"},
      {[](StreamOptions& o) { o.recovery_retries = -1; }, "recovery_retries"},
      {[](StreamOptions& o) { o.stream_paused_max_wait = milliseconds(-1); },
       "stream_paused_max_wait"},
  };
  for (const auto& [mutate, why] : cases) {
    StreamOptions o = Unreachable("https://ws.zerobus.region.cloud.databricks.com");
    mutate(o);
    auto st = ZerobusStream::Open(o);
    ASSERT_FALSE(st.ok()) << why;
    EXPECT_EQ(GetErrorKind(st.status()), ErrorKind::kConfiguration) << st.status().ToString();
    EXPECT_THAT(st.status().message(), ::testing::HasSubstr(why));
  }
}

TEST(StreamOptionsTest, CaFileProblemsAreConfigurationErrors) {
  TempDir dir;
  auto o = Unreachable("http://127.0.0.1:1");
  o.ca_file = dir.path() + "/missing.pem";
  auto st = ZerobusStream::Open(o);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("plaintext http://"));
  o.endpoint = "https://127.0.0.1:1";
  st = ZerobusStream::Open(o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(GetErrorKind(st.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("missing.pem' cannot be read"));
  std::ofstream(dir.path() + "/junk.pem") << "not a certificate";
  o.ca_file = dir.path() + "/junk.pem";
  st = ZerobusStream::Open(o);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("holds no PEM certificate"));
}

TEST(ConnectionTest, UnreachableHostFailsWithAConnectionErrorAfterTheRetries) {
  const auto start = Clock::now();
  auto st = ZerobusStream::Open(Unreachable("http://127.0.0.1:" + std::to_string(ClosedPort())));
  ASSERT_FALSE(st.ok());
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
  EXPECT_EQ(GetErrorKind(st.status()), ErrorKind::kConnection) << st.status().ToString();
  EXPECT_TRUE(IsRetryable(st.status()));
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("cannot open stream to 127.0.0.1:"));
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("gave up after 2 failed attempts"));
}

TEST(ConnectionTest, UnresolvableHostFailsWithAConnectionError) {
  auto st = ZerobusStream::Open(Unreachable("http://no-such-host.invalid:4443"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(GetErrorKind(st.status()), ErrorKind::kConnection) << st.status().ToString();
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("no-such-host.invalid:4443"));
}

TEST(ConnectionTest, SilentPeerTimesOutPerAttempt) {
  SilentListener silent;
  auto o = Unreachable("http://127.0.0.1:" + std::to_string(silent.port()));
  o.recovery_timeout = milliseconds(300);
  const auto start = Clock::now();
  auto st = ZerobusStream::Open(o);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(st.ok());
  // Two attempts of 300 ms each (+ backoff), not more. Whichever fires first ends an attempt:
  // gRPC's connection timeout (set to recovery_timeout) or the stream's own.
  EXPECT_GE(took, milliseconds(550));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_EQ(GetErrorKind(st.status()), ErrorKind::kConnection) << st.status().ToString();
  EXPECT_TRUE(IsRetryable(st.status()));
  EXPECT_THAT(st.status().message(), ::testing::HasSubstr("gave up after 2 failed attempts"));
}

class TlsConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeSelfSignedCert(dir_.path(), "server", &cert_, &key_)) << "openssl CLI";
    ASSERT_TRUE(MakeSelfSignedCert(dir_.path(), "other", &other_cert_, &other_key_));
    auto o = EmulatorTestOptions(dir_.path() + "/data");
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    emu_ = StartEmulator(o);
    ASSERT_NE(emu_, nullptr);
    ASSERT_EQ(emu_->grpc_endpoint().rfind("https://", 0), 0u);
  }
  StreamOptions Options(const std::string& ca) {
    auto o = FastOptions(*emu_, kTable);
    o.ca_file = ca;
    // The token endpoint is TLS too and trusts the same CA.
    OAuthOptions oo = OAuthOptions::Defaults();
    oo.unity_catalog_url = emu_->http_endpoint();
    oo.client_id = kClientId;
    oo.client_secret = SecretString(kClientSecret);
    oo.table_name = kTable;
    oo.workspace_id = "1";
    oo.ca_file = cert_;
    o.headers_provider = *MakeOAuthHeadersProvider(oo);
    o.recovery_retries = 1;
    return o;
  }
  TempDir dir_;
  std::string cert_, key_, other_cert_, other_key_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(TlsConnectionTest, TheRightCaFileConnects) {
  auto stream = ZerobusStream::Open(Options(cert_));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto batch = EncodeRows(*MakeRows(0, 100));
  auto f = (*stream)->IngestEncodedBatch(batch);
  ASSERT_EQ(WaitAll(f), 1);
  ASSERT_TRUE((*stream)->Close().ok());
  EXPECT_EQ(ReadDeltaIds(*emu_, kTable)->size(), 100u);
}

TEST_F(TlsConnectionTest, AWrongCaFailsFastWithAConnectionError) {
  const auto start = Clock::now();
  auto stream = ZerobusStream::Open(Options(other_cert_));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kConnection) << stream.status().ToString();
  // A certificate that does not verify is not retried.
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("TLS verification failed"));
  EXPECT_LT(Clock::now() - start, milliseconds(3000));
}

TEST_F(TlsConnectionTest, SystemRootsDoNotTrustASelfSignedServer) {
  auto stream = ZerobusStream::Open(Options(""));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kConnection) << stream.status().ToString();
}

TEST_F(TlsConnectionTest, PlaintextToATlsServerFails) {
  auto o = Options("");
  o.endpoint = "http://127.0.0.1:" + std::to_string(emu_->grpc_port());
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kConnection) << stream.status().ToString();
}

class RefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto o = EmulatorTestOptions(dir_.path());
    o.strict = true;
    o.tables.push_back({kTable, RowSchema()});
    emu_ = StartEmulator(o);
    ASSERT_NE(emu_, nullptr);
  }
  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(RefusalTest, WrongCredentialsAreAnAuthenticationError) {
  auto o = FastOptions(*emu_, kTable);
  o.headers_provider = OAuthProvider(*emu_, kTable, nullptr, "wrong-secret-123");
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kAuthentication);
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("invalid_client"));
  EXPECT_EQ(stream.status().ToString().find("wrong-secret-123"), std::string::npos);
}

TEST_F(RefusalTest, UnknownTableIsNotFoundAndNotRetried) {
  const std::string missing = "main.client.no_such_table";
  auto o = FastOptions(*emu_, missing);
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kTransmission);
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("NOT_FOUND"));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr(missing));
}

TEST_F(RefusalTest, TokenForAnotherTableIsRefusedOnceMoreThenFinal) {
  // A token granting a different table: PERMISSION_DENIED at open, one reopen, then final.
  std::string token =
      emu_->tokens().IssueForTesting(kClientId, {"main.client.other"}, std::chrono::seconds(60));
  auto o = FastOptions(*emu_, kTable);
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer " + token}});
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kAuthentication);
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(stream.status().ToString().find(token), std::string::npos);
}

TEST_F(RefusalTest, MissingTokenIsUnauthenticated) {
  auto o = FastOptions(*emu_, kTable);
  o.headers_provider = MakeStaticHeadersProvider({});
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kAuthentication);
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("UNAUTHENTICATED"));
}

TEST_F(RefusalTest, DescriptorNotMatchingTheTableIsInvalidArgument) {
  auto o = FastOptions(*emu_, kTable);
  DescriptorProto d = RowDescriptorFor();
  d.mutable_field(1)->set_name("nickname");
  o.descriptor = d;
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kTransmission);
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(RefusalTest, BadHeaderFromTheProviderIsAConfigurationError) {
  auto o = FastOptions(*emu_, kTable);
  o.headers_provider = MakeStaticHeadersProvider({{"Authorization", "Bearer x"}});
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kConfiguration);
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("invalid header name 'Authorization'"));
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer secret\x01"}});
  stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("non-printable value for header 'authorization'"));
  EXPECT_EQ(stream.status().ToString().find("secret"), std::string::npos);
}

// gRPC honours grpc_proxy / no_grpc_proxy: the stream goes through an HTTP CONNECT proxy.
TEST(ProxyTest, GrpcProxyVariableIsHonouredAndNoProxyBypassesIt) {
  TempDir dir;
  auto emu = StartEmulator(EmulatorTestOptions(dir.path()));
  ASSERT_NE(emu, nullptr);
  ConnectProxy proxy;
  auto o = FastOptions(*emu, kTable);
  // The token is fetched directly (curl reads http_proxy, not grpc_proxy).
  setenv("grpc_proxy", proxy.url().c_str(), 1);
  unsetenv("no_grpc_proxy");
  unsetenv("no_proxy");
  {
    auto stream = ZerobusStream::Open(o);
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    auto batch = EncodeRows(*MakeRows(0, 10));
    auto f = (*stream)->IngestEncodedBatch(batch);
    EXPECT_EQ(WaitAll(f), 1);
    EXPECT_TRUE((*stream)->Close().ok());
  }
  auto targets = proxy.targets();
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0], "127.0.0.1:" + std::to_string(emu->grpc_port()));

  setenv("no_grpc_proxy", "127.0.0.1", 1);
  {
    auto stream = ZerobusStream::Open(o);
    ASSERT_TRUE(stream.ok()) << stream.status().ToString();
    EXPECT_TRUE((*stream)->Close().ok());
  }
  EXPECT_EQ(proxy.targets().size(), 1u);  // bypassed
  unsetenv("grpc_proxy");
  unsetenv("no_grpc_proxy");
}

}  // namespace
}  // namespace arrow_zerobus::testing
