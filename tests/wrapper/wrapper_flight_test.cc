// The wrapper's Arrow Flight send path (transport kArrowFlight) over loopback: per-row results
// from piece acks, a stream pool of streams_per_table Flight streams, rows of partly acked
// pieces, in-doubt rows when a stream ends with pieces sent and unacked, and refusals before
// anything is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>

#include <arrow/api.h>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/wrapper.h"
#include "flight_test_util.h"
#include "server/faults.h"
#include "wrapper_test_util.h"

#include <nlohmann/json.hpp>

namespace arrow_zerobus::testing {
namespace {

using ::testing::HasSubstr;
using Mode = ScriptedFlightServer::Mode;

WrapperConfiguration FlightConfig(const ScriptedFlightServer& server) {
  auto c = WrapperConfiguration::Make(server.endpoint(), "main.default.flight");
  c.transport = Transport::kArrowFlight;
  UseFastTimings(&c);
  return c;
}

ZerobusWrapper MakeWrapper(WrapperConfiguration c) {
  auto w = ZerobusWrapper::Make(std::move(c),
                                MakeStaticHeadersProvider({{"authorization", "Bearer x"}}));
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return std::move(*w);
}

TEST(WrapperFlight, EveryRowAckedOverAPoolOfStreams) {
  ScriptedFlightServer server(Mode::kNormal);
  auto c = FlightConfig(server);
  c.streams_per_table = 2;
  auto w = MakeWrapper(c);
  std::vector<arrow::Future<TransmissionResult>> sends;
  for (int b = 0; b < 6; ++b) sends.push_back(w.SendBatchAsync(*FlightTestRows(b * 500, 500)).ValueOrDie());
  for (auto& f : sends) {
    const auto& r = f.result().ValueOrDie();
    ExpectAccounted(r, 500);
    EXPECT_EQ(r.successful_count, 500);
    EXPECT_TRUE(r.in_doubt_rows.empty());
    EXPECT_GT(r.batch_size_bytes, 0);
  }
  ASSERT_TRUE(w.Shutdown().ok());
  auto ids = server.ReceivedIds();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Range(0, 3000));
  EXPECT_EQ(server.calls().size(), 2u);  // one DoPut per stream of the pool
  for (const auto& call : server.calls()) {
    EXPECT_EQ(call.method, "/arrow.flight.protocol.FlightService/DoPut");
    EXPECT_TRUE(call.schema->Equals(*FlightTestSchema()));
  }
  const WrapperStats st = w.stats();
  EXPECT_EQ(st.rows_successful, 3000);
  EXPECT_EQ(st.streams_opened, 2);
}

TEST(WrapperFlight, RowsOfAPartlyAckedPieceAreReplayedByTheStream) {
  ScriptedFlightServer server(Mode::kPartialThenFail);
  auto w = MakeWrapper(FlightConfig(server));
  auto r = w.SendBatch(*FlightTestRows(0, 100)).ValueOrDie();
  ExpectAccounted(r, 100);
  EXPECT_EQ(r.successful_count, 100);
  EXPECT_EQ(r.replayed_rows, 100);  // the piece went twice (its second send carried 50 rows)
  EXPECT_EQ(r.retried_rows, 0);      // the stream recovered by itself
  ASSERT_TRUE(w.Shutdown().ok());
}

TEST(WrapperFlight, AckedRowsOfAPieceWhoseStreamFailedAreSuccessful) {
  ScriptedFlightServer server(Mode::kPartialThenFail);  // acks 50 of the 100 rows, then ends
  auto c = FlightConfig(server);
  c.recovery_retries = 0;    // the stream gives up at once
  c.retry_max_attempts = 1;  // and so does the wrapper
  auto w = MakeWrapper(c);
  auto r = w.SendBatch(*FlightTestRows(0, 100)).ValueOrDie();
  ExpectAccounted(r, 100);
  EXPECT_EQ(r.successful_rows, Range(0, 50));
  EXPECT_EQ(r.in_doubt_rows, Range(50, 100));
  (void)w.Shutdown();
}

TEST(WrapperFlight, SentButUnackedRowsAreInDoubtWhenTheStreamEnds) {
  ScriptedFlightServer server(Mode::kWithholdAcks);
  auto c = FlightConfig(server);
  c.ack_timeout_ms = 300;
  c.recovery_retries = 0;   // the stream gives up at the first failure
  c.retry_max_attempts = 1;  // and so does the wrapper
  auto w = MakeWrapper(c);
  auto r = w.SendBatch(*FlightTestRows(0, 40)).ValueOrDie();
  ExpectAccounted(r, 40);
  EXPECT_EQ(r.successful_count, 0);
  EXPECT_EQ(r.in_doubt_rows, Range(0, 40));
  ASSERT_FALSE(r.failed_rows.empty());
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("in doubt"));
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("server_lack_of_ack_timeout"));
  (void)w.Shutdown();
}

TEST(WrapperFlight, AFailedStreamIsReplacedAndTheRowsSentAgain) {
  ScriptedFlightServer server(Mode::kWithholdAcks);  // only the first DoPut withholds
  auto c = FlightConfig(server);
  c.ack_timeout_ms = 300;
  c.recovery_retries = 0;
  c.retry_max_attempts = 3;
  auto w = MakeWrapper(c);
  auto r = w.SendBatch(*FlightTestRows(0, 40)).ValueOrDie();
  ExpectAccounted(r, 40);
  EXPECT_EQ(r.successful_count, 40);
  EXPECT_TRUE(r.in_doubt_rows.empty());
  EXPECT_EQ(r.retried_rows, 40);
  EXPECT_EQ(r.replayed_rows, 40);  // they had been on the wire before
  EXPECT_EQ(r.attempts, 2);
  ASSERT_TRUE(w.Shutdown().ok());
}

TEST(WrapperFlight, MaxSendsPerRowBoundsTheCopiesOfAPiece) {
  ScriptedFlightServer server(Mode::kWithholdAcks);  // the first DoPut never acks
  auto c = FlightConfig(server);
  c.ack_timeout_ms = 300;
  c.recovery_retries = 3;
  c.max_sends_per_row = 1;  // the stream may not replay it, the wrapper may not resend it
  auto w = MakeWrapper(c);
  auto r = w.SendBatch(*FlightTestRows(0, 30)).ValueOrDie();
  ExpectAccounted(r, 30);
  EXPECT_EQ(r.successful_count, 0);
  EXPECT_EQ(r.in_doubt_rows, Range(0, 30));
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("max_sends_per_row"));
  EXPECT_EQ(server.ReceivedIds(), Range(0, 30));  // on the wire once
  (void)w.Shutdown();
}

TEST(WrapperFlight, SchemaRejectionFailsEveryRowWithTheCauses) {
  ScriptedFlightServer server(Mode::kSchemaReject);
  auto w = MakeWrapper(FlightConfig(server));
  auto r = w.SendBatch(*FlightTestRows(0, 10)).ValueOrDie();
  ExpectAccounted(r, 10);
  EXPECT_EQ(r.failed_count, 10);
  EXPECT_TRUE(r.in_doubt_rows.empty());  // nothing was sent
  ASSERT_TRUE(r.error.has_value());
  EXPECT_THAT(*r.error, HasSubstr("FIELD_NOT_IN_TABLE,FIELD_COUNT_MISMATCH"));
  EXPECT_THAT(*r.error, HasSubstr("field 'extra' is not in the table"));
  EXPECT_EQ(server.calls().size(), 1u);  // not retried
  (void)w.Shutdown();
}

TEST(WrapperFlight, AnOverClaimingServerLeavesTheRowsInDoubt) {
  ScriptedFlightServer server(Mode::kOverClaim);
  auto w = MakeWrapper(FlightConfig(server));
  auto r = w.SendBatch(*FlightTestRows(0, 20)).ValueOrDie();
  ExpectAccounted(r, 20);
  EXPECT_EQ(r.failed_count, 20);
  EXPECT_EQ(r.in_doubt_rows, Range(0, 20));
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("claims 25 records"));
  (void)w.Shutdown();
}

}  // namespace
}  // namespace arrow_zerobus::testing

namespace arrow_zerobus::testing {
namespace {

// The table's schema from Unity Catalog (the emulator's), rows cast to its Flight types: values
// that do not fit fail their row, the others are sent over the scripted DoPut server.
TEST(WrapperFlight, RowsThatDoNotFitTheUnityCatalogTableAreReportedAndTheRestSent) {
  TempDir dir;
  auto table_schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                                     arrow::field("level", arrow::int8()),
                                     arrow::field("price", arrow::decimal128(5, 2))});
  auto emu = StartEmulator(dir.path(), {{"main.default.uc", table_schema}});
  ScriptedFlightServer server(Mode::kNormal);
  auto c = FlightConfig(server);
  c.table_name = "main.default.uc";
  c.descriptor_source = DescriptorSource::kUnityCatalog;
  c.unity_catalog_url = emu->http_endpoint();
  c.client_id = kClientId;
  c.client_secret = SecretString(kClientSecret);
  auto w = ZerobusWrapper::Make(c);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto input = arrow::schema({arrow::field("id", arrow::int64(), false),
                              arrow::field("level", arrow::int64()),
                              arrow::field("price", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(
      input, 4,
      {ArrayFromJson(arrow::int64(), "[10, 11, 12, 13]"),
       ArrayFromJson(arrow::int64(), "[1, 300, 3, null]"),
       ArrayFromJson(arrow::utf8(), R"(["1.50", "2.00", "abc", "7.25"])")});
  auto r = w->SendBatch(*batch).ValueOrDie();
  ExpectAccounted(r, 4);
  EXPECT_EQ(r.successful_rows, (std::vector<int64_t>{0, 3}));
  ASSERT_EQ(r.failed_rows.size(), 2u);
  EXPECT_EQ(r.failed_rows[0].row_index, 1);
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("level"));
  EXPECT_THAT(r.failed_rows[0].message, HasSubstr("300"));
  EXPECT_EQ(r.failed_rows[1].row_index, 2);
  EXPECT_THAT(r.failed_rows[1].message, HasSubstr("price"));
  EXPECT_TRUE(r.in_doubt_rows.empty());
  ASSERT_TRUE(w->Shutdown().ok());

  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  auto expected_schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                                        arrow::field("level", arrow::int8()),
                                        arrow::field("price", arrow::large_utf8())});
  EXPECT_TRUE(calls[0].schema->Equals(*expected_schema)) << calls[0].schema->ToString();
  ASSERT_EQ(calls[0].pieces.size(), 1u);
  auto sent = calls[0].pieces[0].rows;
  ASSERT_NE(sent, nullptr);
  EXPECT_EQ(sent->num_rows(), 2);
  EXPECT_TRUE(sent->column(1)->Equals(*ArrayFromJson(arrow::int8(), "[1, null]")));
  EXPECT_TRUE(sent->column(2)->Equals(*ArrayFromJson(arrow::large_utf8(), R"(["1.50", "7.25"])")));
}

}  // namespace
}  // namespace arrow_zerobus::testing

namespace arrow_zerobus::testing {
namespace {

// ---- against the emulator ----------------------------------------------------------------------

WrapperConfiguration EmulatorFlightConfig(const emulator::Emulator& emu, const std::string& table) {
  auto c = FastConfig(emu, table);
  c.transport = Transport::kArrowFlight;
  return c;
}

TEST(WrapperFlightEmulator, BatchesLandInTheTableWithPerRowResults) {
  TempDir dir;
  auto emu = StartEmulator(dir.path());
  auto c = EmulatorFlightConfig(*emu, "main.default.wflight");
  c.streams_per_table = 2;
  c.ipc_compression = IpcCompression::kLz4Frame;
  auto w = ZerobusWrapper::Make(c);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<arrow::Future<TransmissionResult>> sends;
  // utf8 names: cast to the Flight type large_utf8 on the way.
  for (int b = 0; b < 8; ++b) sends.push_back(w->SendBatchAsync(*MakeRows(b * 250, 250)).ValueOrDie());
  for (auto& f : sends) {
    const auto& r = f.result().ValueOrDie();
    ExpectAccounted(r, 250);
    EXPECT_EQ(r.successful_count, 250);
  }
  ASSERT_TRUE(w->Shutdown().ok());
  auto ids = ReadDeltaIds(*emu, "main.default.wflight").ValueOrDie();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Range(0, 2000));
  auto table = ReadDeltaTable(*emu, "main.default.wflight").ValueOrDie();
  EXPECT_EQ(table->num_rows(), 2000);
  int arrow_streams = 0;
  const auto stats = emu->Stats();
  for (const auto& s : stats["streams"]) {
    if (s["record_type"] == "arrow") ++arrow_streams;

  }
  EXPECT_EQ(arrow_streams, 2);
}

TEST(WrapperFlightEmulator, RowsStoredButNeverAckedAreInDoubt) {
  TempDir dir;
  auto emu = StartEmulator(dir.path());
  emu->faults().Add(emulator::FaultRuleFromJson(nlohmann::json::parse(
                                                    R"({"withhold_acks": true})"))
                        .ValueOrDie());
  auto c = EmulatorFlightConfig(*emu, "main.default.doubt");
  c.ack_timeout_ms = 300;
  c.recovery_retries = 0;
  c.retry_max_attempts = 1;
  auto w = ZerobusWrapper::Make(c);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto r = w->SendBatch(*MakeRows(0, 30)).ValueOrDie();
  ExpectAccounted(r, 30);
  EXPECT_EQ(r.successful_count, 0);
  EXPECT_EQ(r.in_doubt_rows, Range(0, 30));
  (void)w->Shutdown();
  // In doubt indeed: the emulator stored them, it only withheld the acks.
  auto ids = ReadDeltaIds(*emu, "main.default.doubt").ValueOrDie();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, Range(0, 30));
}

}  // namespace
}  // namespace arrow_zerobus::testing
