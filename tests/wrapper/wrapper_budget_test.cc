// One time budget per send (send_timeout_ms) shared by the wrapper's attempts, the stream's
// open attempts and the OAuth token fetch; endpoint mistakes that never heal fail within
// seconds naming their cause; transient ones are retried within the budget, each retry logged.
// Against black holes (a listening socket that never answers) and the real emulator's ports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <mutex>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/log.h"
#include "arrow_zerobus/wrapper.h"
#include "client_test_util.h"
#include "server/auth.h"

namespace arrow_zerobus::testing {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "main.budget.rows";
// Scheduling and teardown on a loaded machine; far below what one more attempt would take.
constexpr milliseconds kSlack(1500);

// Library defaults for every timeout and retry count (the point is that the budget bounds
// them), with credentials for the emulator's principal.
WrapperConfiguration Config(const std::string& endpoint, const std::string& unity_catalog_url) {
  auto c = WrapperConfiguration::Make(endpoint, kTable);
  c.client_id = kClientId;
  c.client_secret = SecretString(kClientSecret);
  c.unity_catalog_url = unity_catalog_url;
  c.failure_rate_threshold = 1.0;  // no cool-down between the cases
  return c;
}

struct Outcome {
  TransmissionResult result;
  milliseconds took{0};
};

Outcome SendOnce(const WrapperConfiguration& c, int64_t rows = 10) {
  auto w = ZerobusWrapper::Make(c);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  if (!w.ok()) return {};
  const auto start = Clock::now();
  auto r = w->SendBatch(*MakeRows(0, rows));
  Outcome out;
  out.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) out.result = *r;
  (void)w->Shutdown();
  return out;
}

// Log records of one test.
class LogCapture {
 public:
  LogCapture() {
    previous_ = GetLogThreshold();
    SetLogThreshold(LogSeverity::kInfo);
    SetLogSink([this](LogSeverity, std::string_view m) {
      std::lock_guard<std::mutex> lk(mu_);
      records_.emplace_back(m);
    });
  }
  ~LogCapture() {
    SetLogSink(nullptr);
    SetLogThreshold(previous_);
  }
  std::vector<std::string> records() const {
    std::lock_guard<std::mutex> lk(mu_);
    return records_;
  }

 private:
  LogSeverity previous_;
  mutable std::mutex mu_;
  std::vector<std::string> records_;
};

class BudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_ = StartEmulator(EmulatorTestOptions(dir_.path()));
    ASSERT_NE(emu_, nullptr);
  }
  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(BudgetTest, SendToAGrpcBlackHoleEndsWithinTheBudget) {
  SilentListener black_hole;
  auto c = Config("http://127.0.0.1:" + std::to_string(black_hole.port()), emu_->http_endpoint());
  c.send_timeout_ms = 2000;
  const Outcome o = SendOnce(c);
  // Without the shared budget: 5 attempts x 5 opens x 15 s each.
  EXPECT_LT(o.took, milliseconds(2000) + kSlack);
  EXPECT_FALSE(o.result.success);
  EXPECT_EQ(o.result.failed_count, 10);
  EXPECT_TRUE(o.result.in_doubt_rows.empty());  // nothing reached a server
  ASSERT_TRUE(o.result.error.has_value());
  const std::string& e = *o.result.error;
  EXPECT_THAT(e, HasSubstr("Retry exhausted: gave up after 1 attempts; last cause: "));
  EXPECT_THAT(e, HasSubstr("the send's time budget, send_timeout_ms=2000, ran out after"));
  EXPECT_THAT(e, HasSubstr("no create_stream_response from 127.0.0.1:" +
                           std::to_string(black_hole.port())));
}

TEST_F(BudgetTest, SendWithATokenEndpointBlackHoleEndsWithinTheBudget) {
  SilentListener black_hole;
  auto c = Config(emu_->grpc_endpoint(), "http://127.0.0.1:" + std::to_string(black_hole.port()));
  c.send_timeout_ms = 2000;
  const Outcome o = SendOnce(c);
  // Without the shared budget: 4 token requests of 30 s per open attempt.
  EXPECT_LT(o.took, milliseconds(2000) + kSlack);
  EXPECT_EQ(o.result.failed_count, 10);
  ASSERT_TRUE(o.result.error.has_value());
  EXPECT_THAT(*o.result.error, HasSubstr("send_timeout_ms=2000, ran out"));
  EXPECT_THAT(*o.result.error, HasSubstr("no token from http://127.0.0.1:" +
                                         std::to_string(black_hole.port()) + "/oidc/v1/token"));
}

TEST_F(BudgetTest, BudgetIsAConfigurationOptionWithLoadersAndValidation) {
  auto c = Config(emu_->grpc_endpoint(), emu_->http_endpoint());
  EXPECT_EQ(c.send_timeout_ms, 120'000);
  EXPECT_EQ(c.max_sends_per_row, 5);
  c.send_timeout_ms = 0;
  EXPECT_THAT(c.Validate().message(), HasSubstr("send_timeout_ms"));
  c.send_timeout_ms = int64_t{1} << 60;
  EXPECT_THAT(c.Validate().message(), HasSubstr("send_timeout_ms"));
  c.send_timeout_ms = 1000;
  c.max_sends_per_row = 0;
  EXPECT_THAT(c.Validate().message(), HasSubstr("max_sends_per_row"));
  auto y = WrapperConfiguration::FromYamlString(
      "retry:\n  send_timeout_ms: 2500\n  max_sends_per_row: 2\n");
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->send_timeout_ms, 2500);
  EXPECT_EQ(y->max_sends_per_row, 2);
  auto env = WrapperConfiguration::FromEnvironment([](const std::string& name) {
    if (name == "ZEROBUS_SEND_TIMEOUT_MS") return std::optional<std::string>("3500");
    if (name == "ZEROBUS_MAX_SENDS_PER_ROW") return std::optional<std::string>("3");
    return std::optional<std::string>();
  });
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->send_timeout_ms, 3500);
  EXPECT_EQ(env->max_sends_per_row, 3);
}

// ---- endpoint mistakes: the real emulator's ports, library defaults ---------------------------

// Never heals: must end within seconds (default settings would retry for minutes).
constexpr milliseconds kFast(5000);

class EndpointMistakeTest : public ::testing::Test {
 protected:
  void StartPlain() {
    emu_ = StartEmulator(EmulatorTestOptions(dir_.path() + "/data"));
    ASSERT_NE(emu_, nullptr);
  }
  void StartTls() {
    ASSERT_TRUE(MakeSelfSignedCert(dir_.path(), "server", &cert_, &key_)) << "openssl CLI";
    auto o = EmulatorTestOptions(dir_.path() + "/data");
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    emu_ = StartEmulator(o);
    ASSERT_NE(emu_, nullptr);
  }
  // A send with a pre-issued token (no token endpoint involved) to `endpoint`.
  Outcome SendWithToken(const std::string& endpoint) {
    auto c = WrapperConfiguration::Make(endpoint, kTable);
    c.failure_rate_threshold = 1.0;
    auto provider = MakeStaticHeadersProvider(
        {{"authorization",
          "Bearer " + emu_->tokens().IssueForTesting(kClientId, {kTable}, std::chrono::seconds(60))}});
    auto w = ZerobusWrapper::Make(c, provider);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return {};
    const auto start = Clock::now();
    auto r = w->SendBatch(*MakeRows(0, 10));
    Outcome out;
    out.took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) out.result = *r;
    (void)w->Shutdown();
    return out;
  }
  // A mistake that never heals: every row fails within seconds, the error naming the mistake.
  static void ExpectFastFailureNaming(const Outcome& o, std::initializer_list<const char*> words) {
    EXPECT_LT(o.took, kFast);
    EXPECT_EQ(o.result.failed_count, 10);
    ASSERT_TRUE(o.result.error.has_value());
    for (const char* w : words) EXPECT_THAT(*o.result.error, HasSubstr(w));
  }
  static std::string Local(bool tls, int port) {
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port);
  }
  TempDir dir_;
  std::string cert_, key_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(EndpointMistakeTest, PlaintextToATlsServerFailsFastNamingTls) {
  StartTls();
  ExpectFastFailureNaming(SendWithToken(Local(false, emu_->grpc_port())),
                          {"speaks TLS", "use https://"});
}

TEST_F(EndpointMistakeTest, TlsWithoutTheCaFailsFastNamingVerification) {
  StartTls();
  ExpectFastFailureNaming(SendWithToken(Local(true, emu_->grpc_port())),
                          {"TLS verification failed", "ca_file"});
}

TEST_F(EndpointMistakeTest, GrpcEndpointAtTheHttpPortFailsFastNamingHttp1) {
  StartPlain();
  ExpectFastFailureNaming(SendWithToken(Local(false, emu_->http_port())),
                          {"answers HTTP/1", "not a gRPC"});
}

TEST_F(EndpointMistakeTest, TokenUrlAtTheGrpcPortFailsFastNamingTheTokenEndpoint) {
  StartPlain();
  auto c = Config(emu_->grpc_endpoint(), Local(false, emu_->grpc_port()));
  ExpectFastFailureNaming(SendOnce(c), {"/oidc/v1/token", "not an HTTP/1.1 server"});
}

TEST_F(EndpointMistakeTest, ClosedPortIsRetriedWithinTheBudgetAndEachRetryIsLogged) {
  StartPlain();
  LogCapture log;
  const int closed = ClosedPort();
  auto c = Config(Local(false, closed), emu_->http_endpoint());
  c.send_timeout_ms = 4000;
  const Outcome o = SendOnce(c);
  EXPECT_LT(o.took, milliseconds(4000) + kSlack);
  EXPECT_EQ(o.result.failed_count, 10);
  ASSERT_TRUE(o.result.error.has_value());
  EXPECT_THAT(*o.result.error, HasSubstr("127.0.0.1:" + std::to_string(closed)));
  // The wrapper's attempts and the stream's reopens all stopped inside the budget; the refused
  // connection is named even when the last attempt was only cut short by the budget (then as
  // the first attempt's cause).
  EXPECT_THAT(*o.result.error, HasSubstr("Retry exhausted: gave up after"));
  EXPECT_THAT(*o.result.error, HasSubstr("Connection refused"));
  int retries_logged = 0;
  for (const auto& r : log.records()) {
    if (r.find("attempt 1 failed") == std::string::npos) continue;
    ++retries_logged;
    EXPECT_THAT(r, HasSubstr("127.0.0.1:" + std::to_string(closed)));  // the reason
    EXPECT_THAT(r, HasSubstr("next attempt 2"));
    EXPECT_THAT(r, ::testing::ContainsRegex("in [0-9]+ ms"));
  }
  EXPECT_GE(retries_logged, 1);
}

}  // namespace
}  // namespace arrow_zerobus::testing
