// The client against a scripted server: what it sends (metadata, user-agent, offsets), and how
// it handles a server that breaks the protocol or never answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/version.h"
#include "client_test_util.h"

namespace arrow_zerobus::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Mode = ScriptedZerobusServer::Mode;

constexpr const char* kTable = "cat.sch.tbl";

StreamOptions Options(const ScriptedZerobusServer& server) {
  StreamOptions o = StreamOptions::Defaults();
  o.endpoint = server.endpoint();
  o.table_name = kTable;
  o.descriptor = RowDescriptorFor();
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer scripted-token"}});
  o.recovery_timeout = milliseconds(300);
  o.recovery_backoff = milliseconds(10);
  o.recovery_backoff_max = milliseconds(20);
  o.recovery_retries = 1;
  return o;
}

TEST(ProtocolTest, OpeningMetadataUserAgentAndOffsets) {
  ScriptedZerobusServer server(Mode::kNormal);
  auto o = Options(server);
  o.application_name = "sensor-pipeline";
  o.headers_provider = MakeStaticHeadersProvider(
      {{"authorization", "Bearer scripted-token"},
       {"x-extra", "yes"},
       {"x-databricks-zerobus-table-name", "ignored.by.stream"}});
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_EQ((*stream)->stats().stream_id, "scripted");
  auto md = server.metadata();
  EXPECT_EQ(md["authorization"], "Bearer scripted-token");
  EXPECT_EQ(md["x-extra"], "yes");
  EXPECT_EQ(md["x-databricks-zerobus-table-name"], kTable);
  EXPECT_EQ(md["user-agent"].rfind(std::string(kProductName) + "/" + std::string(kVersion) +
                                       " sensor-pipeline",
                                   0),
            0u)
      << md["user-agent"];
  auto batch = EncodeRows(*MakeRows(0, 50), 200);
  auto fs = (*stream)->IngestEncodedBatch(batch);
  ASSERT_GE(fs.size(), 3u);
  EXPECT_EQ(WaitAll(fs), static_cast<int64_t>(fs.size()));
  std::vector<int64_t> expected(fs.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int64_t>(i);
  EXPECT_EQ(server.offsets(), expected);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST(ProtocolTest, ServerThatNeverAnswersCreateTimesOutPerAttempt) {
  ScriptedZerobusServer server(Mode::kNeverAnswerCreate);
  const auto start = Clock::now();
  auto stream = ZerobusStream::Open(Options(server));
  const auto took = Clock::now() - start;
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(GetErrorKind(stream.status()), ErrorKind::kConnection);
  EXPECT_TRUE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(),
              ::testing::HasSubstr("no create_stream_response from 127.0.0.1:"));
  EXPECT_THAT(stream.status().message(), ::testing::HasSubstr("within 300 ms (recovery_timeout)"));
  EXPECT_GE(took, milliseconds(600));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_EQ(server.streams(), 2);
}

struct ViolationCase {
  const char* name;
  Mode mode;
  const char* message;
};

class ViolationTest : public ::testing::TestWithParam<ViolationCase> {};

TEST_P(ViolationTest, FailsPendingRequestsWithAProtocolError) {
  ScriptedZerobusServer server(GetParam().mode);
  auto stream = ZerobusStream::Open(Options(server));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto batch = EncodeRows(*MakeRows(0, 40), 200);
  // The stream may fail while chunks are still being admitted: later ones are then refused
  // with the same error and never queued.
  std::vector<arrow::Future<IngestAck>> fs;
  std::vector<arrow::Status> errors;
  for (const auto& chunk : batch.chunks) {
    auto f = (*stream)->IngestChunk(batch, chunk);
    if (!f.ok()) {
      errors.push_back(f.status());
      break;
    }
    fs.push_back(*f);
  }
  const size_t refused = errors.size();
  const int64_t ok = WaitAll(fs, &errors, milliseconds(5000));
  EXPECT_EQ(ok + static_cast<int64_t>(errors.size() - refused), static_cast<int64_t>(fs.size()));
  // Either a queued request failed or a later one was refused: both carry the error.
  ASSERT_FALSE(errors.empty());
  if (errors.size() == refused) {
    // Everything queued was acked before the violation; wait for the stream to fail.
    EXPECT_EQ((*stream)->Flush().message(), errors[0].message());
  }
  for (const auto& e : errors) {
    EXPECT_EQ(GetErrorKind(e), ErrorKind::kTransmission);
    EXPECT_FALSE(IsRetryable(e));
    EXPECT_THAT(e.message(), ::testing::HasSubstr("protocol error from the server"));
    EXPECT_THAT(e.message(), ::testing::HasSubstr(GetParam().message));
  }
  EXPECT_EQ((*stream)->state(), StreamState::kFailed);
  EXPECT_EQ((*stream)->TakeUnacked().size(), errors.size() - refused);
}

INSTANTIATE_TEST_SUITE_P(
    Violations, ViolationTest,
    ::testing::Values(ViolationCase{"AckBackwards", Mode::kAckBackwards, "went backwards from offset 1 to 0"},
                      ViolationCase{"AckBeyondSent", Mode::kAckBeyondSent, "ack for offset 5 but only"},
                      ViolationCase{"AckWithoutOffset", Mode::kAckWithoutField,
                                    "without durability_ack_up_to_offset"},
                      ViolationCase{"Garbage", Mode::kGarbage, "unparseable"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace arrow_zerobus::testing
