// Every fault the emulator can inject, set through the admin API (POST /admin/faults) as a
// client test would, checked over real loopback gRPC.
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr const char* kTable = "main.default.rows";
constexpr const char* kOther = "main.default.other";

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emulator_ = std::make_unique<Emulator>(TestOptions(dir_.path()));
    auto st = emulator_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<Client>("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
  }

  void Fault(const std::string& body) {
    auto r = HttpPost(*emulator_, "/admin/faults", body, "application/json");
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // A token from the OAuth endpoint (no table grants): the endpoint's JSON answer.
  json OAuthToken() {
    auto r = HttpPost(*emulator_, "/oidc/v1/token", "grant_type=client_credentials&scope=all-apis",
                      "application/x-www-form-urlencoded",
                      {{"Authorization", "Basic " + Base64("test-client:test-secret")}});
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  }

  // The Unity Catalog endpoint checks a token of any grants: 200 valid, 401 refused.
  HttpResult UnityCatalogGet(const std::string& bearer) {
    return HttpGet(*emulator_, std::string("/api/2.1/unity-catalog/tables/") + kTable, bearer);
  }

  StreamCall Open(const std::string& table = kTable) {
    return OpenCreated(*client_, BearerFor(*emulator_, table), table, &desc_);
  }

  TempDir dir_;
  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<Client> client_;
  google::protobuf::DescriptorProto desc_ = RowDescriptor();
  RowEncoder enc_;
};

TEST_F(FaultTest, EndStreamAfterNRequestsWithChosenStatus) {
  Fault(R"({"end_stream": {"after_requests": 2, "code": "UNAVAILABLE",
            "message": "6002 Stream timeout reached"}, "times": 1})");
  auto call = Open();
  for (int i = 0; i < 5; ++i) call.Write(ProtoRecord(i, enc_.Encode(i, "e", i)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "6002 Stream timeout reached");
  auto stats = emulator_->Stats();
  EXPECT_EQ(stats["streams"][0]["requests"], 2);

  // times = 1: the next stream is not affected.
  auto next = Open();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(next.Write(ProtoRecord(i, enc_.Encode(i, "e", i))));
  EXPECT_EQ(next.ReadAcksUntil(4).back(), 4);
  EXPECT_TRUE(next.Close().ok());
}

TEST_F(FaultTest, EndStreamRightAfterCreateWhenNIsZero) {
  Fault(R"({"end_stream": {"after_requests": 0, "code": 13, "message": "boom"}})");
  auto call = Open();
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(st.error_message(), "boom");
}

TEST_F(FaultTest, FaultTargetsOneTable) {
  Fault(std::string(R"({"table": ")") + kOther +
        R"(", "end_stream": {"after_requests": 0, "code": "INTERNAL"}})");
  auto hit = Open(kOther);
  EXPECT_EQ(hit.Close().error_code(), grpc::StatusCode::INTERNAL);
  auto spared = Open(kTable);
  ASSERT_TRUE(spared.Write(ProtoRecord(0, enc_.Encode(1, "s", 1))));
  EXPECT_EQ(spared.ReadAcksUntil(0).back(), 0);
  EXPECT_TRUE(spared.Close().ok());
}

TEST_F(FaultTest, AckDelay) {
  auto call = Open();
  // Baseline without the fault.
  auto t0 = Clock::now();
  ASSERT_TRUE(call.Write(ProtoRecord(0, enc_.Encode(0, "d", 0))));
  ASSERT_EQ(call.ReadAcksUntil(0).back(), 0);
  auto baseline = Clock::now() - t0;

  Fault(R"({"ack_delay_ms": 400})");
  t0 = Clock::now();
  ASSERT_TRUE(call.Write(ProtoRecord(1, enc_.Encode(1, "d", 1))));
  ASSERT_EQ(call.ReadAcksUntil(1).back(), 1);
  auto delayed = Clock::now() - t0;
  EXPECT_GE(delayed, std::chrono::milliseconds(400));
  EXPECT_LT(baseline, std::chrono::milliseconds(400));
  ASSERT_EQ(HttpDelete(*emulator_, "/admin/faults").status, 200);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(FaultTest, WithheldAcksAreReleasedWhenTheFaultIsRemoved) {
  Fault(R"({"withhold_acks": true})");
  auto call = Open();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call.Write(ProtoRecord(i, enc_.Encode(i, "w", i))));
  // Wait until the rows are durable, then check no ack went out.
  for (int i = 0; i < 200; ++i) {
    if (emulator_->Stats()["tables"][0]["rows"] == 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto stats = emulator_->Stats();
  EXPECT_EQ(stats["tables"][0]["rows"], 3);
  EXPECT_EQ(stats["streams"][0]["acks"], 0);
  EXPECT_EQ(stats["streams"][0]["last_ack_offset"], -1);

  ASSERT_EQ(HttpDelete(*emulator_, "/admin/faults").status, 200);
  auto acks = call.ReadAcksUntil(2);
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), 2);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(FaultTest, CloseStreamSignalThenServerEndsTheRpc) {
  Fault(R"({"close_signal": {"after_requests": 2, "duration_ms": 300}})");
  auto call = Open();
  auto t0 = Clock::now();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(call.Write(ProtoRecord(i, enc_.Encode(i, "c", i))));
  bool got_signal = false;
  int64_t last_ack = -1;
  zb::EphemeralStreamResponse r;
  while (call.Read(&r)) {
    if (r.has_close_stream_signal()) {
      got_signal = true;
      EXPECT_EQ(r.close_stream_signal().duration().seconds(), 0);
      EXPECT_EQ(r.close_stream_signal().duration().nanos(), 300'000'000);
    }
    if (r.has_ingest_record_response()) {
      last_ack = r.ingest_record_response().durability_ack_up_to_offset();
    }
  }
  grpc::Status st = call.stream->Finish();
  auto elapsed = Clock::now() - t0;
  EXPECT_TRUE(got_signal);
  EXPECT_EQ(last_ack, 1);  // what was sent before the end is acknowledged
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  EXPECT_EQ(emulator_->Stats()["streams"][0]["close_signals"], 1);
}

// expire_tokens models real expiry: tokens issued before it keep their stated lifetime; tokens
// issued after it state a short expires_in and are refused once that has passed.
TEST_F(FaultTest, ExpireTokensShortensTheLifetimeOfNewTokens) {
  std::string before = BearerFor(*emulator_, kTable);  // valid for 600 s
  Fault(R"({"expire_tokens": 2})");
  EXPECT_TRUE(CreateStatus(*client_, before, kTable, CreateRequest(kTable, &desc_)).ok());

  json issued = OAuthToken();
  auto t0 = Clock::now();
  EXPECT_EQ(issued["expires_in"], 2);
  std::string bearer = "Bearer " + issued["access_token"].get<std::string>();
  EXPECT_EQ(UnityCatalogGet(bearer).status, 200);
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(2100));
  HttpResult expired = UnityCatalogGet(bearer);
  EXPECT_EQ(expired.status, 401);
  EXPECT_THAT(expired.body, HasSubstr("expired"));
  grpc::Status st = CreateStatus(*client_, bearer, kTable, CreateRequest(kTable, &desc_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("expired"));
  // The token issued before the fault is still good.
  EXPECT_TRUE(CreateStatus(*client_, before, kTable, CreateRequest(kTable, &desc_)).ok());

  // true = 1 s; false, or DELETE /admin/faults, = the configured lifetime again.
  Fault(R"({"expire_tokens": true})");
  EXPECT_EQ(OAuthToken()["expires_in"], 1);
  Fault(R"({"expire_tokens": false})");
  EXPECT_EQ(OAuthToken()["expires_in"], 3600);
  Fault(R"({"expire_tokens": 5})");
  ASSERT_EQ(HttpDelete(*emulator_, "/admin/faults").status, 200);
  EXPECT_EQ(OAuthToken()["expires_in"], 3600);
  for (const char* bad : {R"({"expire_tokens": 0})", R"({"expire_tokens": 1.5})",
                          R"({"expire_tokens": "1"})", R"({"revoke_tokens": 1})"}) {
    auto r = HttpPost(*emulator_, "/admin/faults", bad, "application/json");
    EXPECT_EQ(r.status, 400) << bad;
  }
}

// revoke_tokens models a revocation: every token issued so far is refused at once, on the gRPC
// side and the HTTP side, whatever its stated expiry; new tokens work.
TEST_F(FaultTest, RevokeTokensInvalidatesIssuedTokensAtOnce) {
  std::string token = BearerFor(*emulator_, kTable);
  EXPECT_TRUE(CreateStatus(*client_, token, kTable, CreateRequest(kTable, &desc_)).ok());
  Fault(R"({"revoke_tokens": true})");
  grpc::Status st = CreateStatus(*client_, token, kTable, CreateRequest(kTable, &desc_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(st.error_message(), HasSubstr("revoked"));
  EXPECT_EQ(UnityCatalogGet(token).status, 401);
  // A fresh token works again.
  EXPECT_TRUE(CreateStatus(*client_, BearerFor(*emulator_, kTable), kTable,
                           CreateRequest(kTable, &desc_))
                  .ok());
}

TEST_F(FaultTest, BlockCreationForAWhile) {
  auto t0 = Clock::now();
  Fault(R"({"block_creation_s": 1.0})");
  grpc::Status st = CreateStatus(*client_, BearerFor(*emulator_, kTable), kTable,
                                 CreateRequest(kTable, &desc_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("6006 Pipeline creation is temporarily blocked"));
  std::this_thread::sleep_until(t0 + std::chrono::milliseconds(1100));
  st = CreateStatus(*client_, BearerFor(*emulator_, kTable), kTable,
                    CreateRequest(kTable, &desc_));
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(FaultTest, BlockCreationForOneTable) {
  Fault(std::string(R"({"table": ")") + kOther + R"(", "block_creation_s": 30})");
  grpc::Status st = CreateStatus(*client_, BearerFor(*emulator_, kOther), kOther,
                                 CreateRequest(kOther, &desc_));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr(kOther));
  st = CreateStatus(*client_, BearerFor(*emulator_, kTable), kTable,
                    CreateRequest(kTable, &desc_));
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(emulator_->faults().creations_refused(), 1);  // only the blocked table's opening
  // DELETE lifts the block.
  ASSERT_EQ(HttpDelete(*emulator_, "/admin/faults").status, 200);
  st = CreateStatus(*client_, BearerFor(*emulator_, kOther), kOther,
                    CreateRequest(kOther, &desc_));
  EXPECT_TRUE(st.ok()) << st.error_message();
}

TEST_F(FaultTest, RecordRateLimitPacesAcks) {
  Fault(R"({"max_records_per_s": 100})");
  auto call = Open();
  auto t0 = Clock::now();
  // 40 records in 4 batches: at 100 records/s the last ack cannot come before ~400 ms.
  for (int b = 0; b < 4; ++b) {
    std::vector<std::string> recs;
    for (int i = 0; i < 10; ++i) recs.push_back(enc_.Encode(b * 10 + i, "q", i));
    ASSERT_TRUE(call.Write(ProtoBatch(b, recs)));
  }
  auto acks = call.ReadAcksUntil(3);
  auto elapsed = Clock::now() - t0;
  ASSERT_EQ(acks.back(), 3);
  EXPECT_GE(elapsed, std::chrono::milliseconds(380));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  // Paced acks arrive one by one, not all at once.
  EXPECT_GE(acks.size(), 2u);
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(FaultTest, ByteRateLimitPacesAcks) {
  auto call = Open();
  std::string payload(1000, 'b');
  std::string rec = enc_.Encode(1, payload, 1);
  Fault("{\"max_bytes_per_s\": " + std::to_string(rec.size() * 10) + "}");
  auto t0 = Clock::now();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call.Write(ProtoRecord(i, rec)));
  ASSERT_EQ(call.ReadAcksUntil(3).back(), 3);
  // 4 records at 10 records' worth of bytes per second: at least ~400 ms.
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(380));
  EXPECT_TRUE(call.Close().ok());
}

TEST_F(FaultTest, RulesFromOptionsApplyFromTheStart) {
  auto o = TestOptions(dir_.path());
  FaultRule rule;
  rule.end_stream = EndStreamFault{1, 8, "quota"};
  o.faults.push_back(rule);
  o.block_creation = std::chrono::milliseconds(0);
  ASSERT_TRUE(emulator_->Shutdown().ok());
  emulator_ = std::make_unique<Emulator>(o);
  ASSERT_TRUE(emulator_->Start().ok());
  client_ = std::make_unique<Client>("127.0.0.1:" + std::to_string(emulator_->grpc_port()));
  auto call = Open();
  call.Write(ProtoRecord(0, enc_.Encode(0, "o", 0)));
  grpc::Status st = call.Close();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "quota");
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
