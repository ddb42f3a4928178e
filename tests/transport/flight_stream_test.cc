// The Arrow Flight stream (RecordType::kArrow) end to end over loopback: against a scripted DoPut
// server (what goes on the wire, how acks map to pieces, partial acks and sliced replays, close
// signals, withheld acks, bad ready signals, over-claims, schema rejections) and against the
// emulator (rows land in the Delta table and read back equal).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <thread>

#include <arrow/api.h>
#include <arrow/util/byte_size.h>

#include <nlohmann/json.hpp>

#include "arrow_zerobus/errors.h"
#include "arrow_zerobus/stream.h"
#include "client_test_util.h"
#include "flight_test_util.h"
#include "server/faults.h"

namespace arrow_zerobus::testing {
namespace {

using ::testing::HasSubstr;
using Mode = ScriptedFlightServer::Mode;

StreamOptions ScriptedOptions(const ScriptedFlightServer& server) {
  StreamOptions o;
  o.endpoint = server.endpoint();
  o.table_name = "main.default.flight";
  o.record_type = RecordType::kArrow;
  o.arrow_schema = FlightTestSchema();
  o.headers_provider = MakeStaticHeadersProvider({{"authorization", "Bearer t0ken"},
                                                  {"x-databricks-zerobus-table-name", "wrong"},
                                                  {"x-extra", "1"}});
  o.recovery_timeout = std::chrono::milliseconds(3000);
  o.recovery_backoff = std::chrono::milliseconds(20);
  o.recovery_backoff_max = std::chrono::milliseconds(100);
  o.recovery_retries = 2;
  o.server_lack_of_ack_timeout = std::chrono::milliseconds(3000);
  o.flush_timeout = std::chrono::milliseconds(20000);
  return o;
}

// Waits for every piece's ack; the failures go to `errors`.
int64_t WaitPieces(const std::vector<ZerobusStream::ArrowPiece>& pieces,
                   std::vector<arrow::Status>* errors = nullptr) {
  int64_t ok = 0;
  for (const auto& p : pieces) {
    if (!p.ack.Wait(30)) {
      ADD_FAILURE() << "piece not finished in 30 s";
      continue;
    }
    if (p.ack.result().ok()) {
      ++ok;
    } else if (errors) {
      errors->push_back(p.ack.result().status());
    }
  }
  return ok;
}

int64_t PieceBytesFor(const arrow::RecordBatch& batch, int pieces) {
  int64_t size = 0;
  for (const auto& c : batch.columns()) size += arrow::util::TotalBufferSize(*c);
  return (size + pieces - 1) / pieces;
}

TEST(FlightStream, WireFormatOfADoPut) {
  ScriptedFlightServer server(Mode::kNormal);
  auto rows = FlightTestRows(0, 1000);
  auto o = ScriptedOptions(server);
  o.flight_piece_bytes = PieceBytesFor(*rows, 4);
  auto stream = ZerobusStream::Open(o).ValueOrDie();
  auto pieces = stream->IngestArrowBatch(rows);
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(WaitPieces(pieces), 4);
  int64_t next = 0;
  for (const auto& p : pieces) {
    EXPECT_EQ(p.range.begin, next);
    next = p.range.end;
    EXPECT_EQ(p.ack.result()->num_records, p.range.end - p.range.begin);
    EXPECT_EQ(p.ack.result()->sends, 1);
  }
  EXPECT_EQ(next, 1000);
  ASSERT_TRUE(stream->Close().ok());

  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 1u);
  const auto& call = calls[0];
  EXPECT_EQ(call.method, "/arrow.flight.protocol.FlightService/DoPut");
  EXPECT_EQ(call.metadata.at("authorization"), "Bearer t0ken");
  EXPECT_EQ(call.metadata.at("x-databricks-zerobus-table-name"), "main.default.flight");
  EXPECT_EQ(call.metadata.at("x-extra"), "1");
  EXPECT_EQ(call.metadata.count("grpc-timeout"), 0u);
  ASSERT_NE(call.schema, nullptr);
  EXPECT_TRUE(call.schema->Equals(*FlightTestSchema(), true));
  EXPECT_FALSE(call.schema_has_descriptor);
  EXPECT_EQ(call.schema_app_metadata, "");
  EXPECT_TRUE(call.decode_errors.empty()) << call.decode_errors[0];
  ASSERT_EQ(call.pieces.size(), 4u);
  for (size_t i = 0; i < call.pieces.size(); ++i) {
    EXPECT_EQ(call.pieces[i].app_metadata, "{\"offset_id\":" + std::to_string(i) + "}");
    ASSERT_NE(call.pieces[i].rows, nullptr);
    EXPECT_TRUE(call.pieces[i].rows->Equals(
        *rows->Slice(pieces[i].range.begin, pieces[i].range.end - pieces[i].range.begin)));
  }
  EXPECT_TRUE(call.half_closed);
  const StreamStats st = stream->stats();
  EXPECT_EQ(st.records_acked, 1000);
  EXPECT_EQ(st.requests_acked, 4);
  EXPECT_EQ(st.rpcs_opened, 1);
}

TEST(FlightStream, ManyBatchesInOrderWithCompression) {
  for (auto codec : {IpcCompression::kLz4Frame, IpcCompression::kZstd}) {
    ScriptedFlightServer server(Mode::kNormal);
    auto o = ScriptedOptions(server);
    o.ipc_compression = codec;
    auto stream = ZerobusStream::Open(o).ValueOrDie();
    std::vector<ZerobusStream::ArrowPiece> all;
    for (int b = 0; b < 20; ++b) {
      for (auto& p : stream->IngestArrowBatch(FlightTestRows(b * 50, 50))) all.push_back(p);
    }
    EXPECT_EQ(WaitPieces(all), 20);
    ASSERT_TRUE(stream->Close().ok());
    EXPECT_EQ(server.ReceivedIds(), Range(0, 1000));
    EXPECT_TRUE(server.calls()[0].decode_errors.empty());
  }
}

TEST(FlightStream, PartialAckThenFailureReplaysOnlyTheUnackedRows) {
  ScriptedFlightServer server(Mode::kPartialThenFail);
  auto stream = ZerobusStream::Open(ScriptedOptions(server)).ValueOrDie();
  auto pieces = stream->IngestArrowBatch(FlightTestRows(0, 100));
  ASSERT_EQ(pieces.size(), 1u);
  ASSERT_EQ(WaitPieces(pieces), 1);
  EXPECT_EQ(pieces[0].ack.result()->sends, 2);
  EXPECT_EQ(pieces[0].ack.result()->num_records, 100);
  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  // The second DoPut starts again at offset 0 with the 50 rows the first did not ack.
  ASSERT_EQ(calls[1].pieces.size(), 1u);
  EXPECT_EQ(calls[1].pieces[0].app_metadata, "{\"offset_id\":0}");
  EXPECT_TRUE(calls[1].pieces[0].rows->Equals(*FlightTestRows(50, 50)));
  std::vector<int64_t> expected = Range(0, 100);
  auto tail = Range(50, 100);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(server.ReceivedIds(), expected);
  const StreamStats st = stream->stats();
  EXPECT_EQ(st.records_replayed, 50);
  EXPECT_EQ(st.requests_replayed, 1);
  EXPECT_EQ(st.rpcs_opened, 2);
  ASSERT_TRUE(stream->Close().ok());
}

TEST(FlightStream, CloseSignalRotatesToANewDoPut) {
  ScriptedFlightServer server(Mode::kCloseSignal);
  auto stream = ZerobusStream::Open(ScriptedOptions(server)).ValueOrDie();
  auto first = stream->IngestArrowBatch(FlightTestRows(0, 10));
  ASSERT_EQ(WaitPieces(first), 1);
  auto second = stream->IngestArrowBatch(FlightTestRows(10, 10));
  auto third = stream->IngestArrowBatch(FlightTestRows(20, 10));
  EXPECT_EQ(WaitPieces(second) + WaitPieces(third), 2);
  ASSERT_TRUE(stream->Close().ok());
  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].pieces.size(), 1u);  // nothing new after the close signal
  ASSERT_EQ(calls[1].pieces.size(), 2u);
  EXPECT_EQ(calls[1].pieces[0].app_metadata, "{\"offset_id\":0}");
  EXPECT_EQ(server.ReceivedIds(), Range(0, 30));  // nothing replayed: everything was acked
  EXPECT_EQ(stream->stats().close_signals, 1);
  EXPECT_EQ(stream->stats().records_replayed, 0);
}

TEST(FlightStream, WithheldAcksTimeOutAndTheRowsAreReplayed) {
  ScriptedFlightServer server(Mode::kWithholdAcks);
  auto o = ScriptedOptions(server);
  o.server_lack_of_ack_timeout = std::chrono::milliseconds(300);
  auto stream = ZerobusStream::Open(o).ValueOrDie();
  auto pieces = stream->IngestArrowBatch(FlightTestRows(0, 40));
  ASSERT_EQ(WaitPieces(pieces), 1);
  EXPECT_EQ(pieces[0].ack.result()->sends, 2);
  auto calls = server.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].pieces[0].rows->Equals(*FlightTestRows(0, 40)));
  EXPECT_GE(stream->stats().rpc_failures, 1);
  ASSERT_TRUE(stream->Close().ok());
}

TEST(FlightStream, InFlightLimitsCountPiecesAndTheirBytes) {
  auto rows = FlightTestRows(0, 400);
  for (bool by_bytes : {false, true}) {
    ScriptedFlightServer server(Mode::kWithholdAcks);
    auto o = ScriptedOptions(server);
    o.flight_piece_bytes = PieceBytesFor(*rows, 4);
    o.when_full = FullPolicy::kReject;
    o.server_lack_of_ack_timeout = std::chrono::milliseconds(20'000);
    if (by_bytes) {
      o.max_inflight_bytes = 1;  // one piece at a time, however large
    } else {
      o.max_inflight_requests = 2;
    }
    auto stream = ZerobusStream::Open(o).ValueOrDie();
    auto pieces = stream->IngestArrowBatch(rows);
    ASSERT_EQ(pieces.size(), 4u);
    const size_t admitted = by_bytes ? 1 : 2;
    for (size_t i = 0; i < pieces.size(); ++i) {
      EXPECT_EQ(pieces[i].seq >= 0, i < admitted) << i;
      if (i < admitted) continue;
      ASSERT_TRUE(pieces[i].ack.is_finished());
      EXPECT_TRUE(IsRetryable(pieces[i].ack.result().status()));
      EXPECT_THAT(pieces[i].ack.result().status().message(),
                  HasSubstr(by_bytes ? "max_inflight_bytes=1" : "max_inflight_requests=2"));
    }
    EXPECT_EQ(stream->stats().inflight_requests, static_cast<int64_t>(admitted));
    stream->Abort();
  }
}

TEST(FlightStream, AnAckForAnotherOffsetInsteadOfReadyIsRetriedThenFails) {
  ScriptedFlightServer server(Mode::kBadReady);
  auto o = ScriptedOptions(server);
  o.recovery_retries = 1;
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_THAT(stream.status().message(), HasSubstr("expected the ready signal"));
  EXPECT_THAT(stream.status().message(), HasSubstr("offset 3"));
  EXPECT_EQ(server.calls().size(), 2u);
}

TEST(FlightStream, AMalformedReadySignalFailsAtOnce) {
  ScriptedFlightServer server(Mode::kGarbageReady);
  auto stream = ZerobusStream::Open(ScriptedOptions(server));
  ASSERT_FALSE(stream.ok());
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), HasSubstr("malformed setup response"));
  EXPECT_EQ(server.calls().size(), 1u);
}

TEST(FlightStream, ServerEndingTheDoPutDuringSetupIsRetried) {
  ScriptedFlightServer server(Mode::kEndDuringSetup);
  auto o = ScriptedOptions(server);
  o.recovery_retries = 2;
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(server.calls().size(), 3u);
}

TEST(FlightStream, AnAckClaimingMoreRowsThanSentEndsTheStream) {
  ScriptedFlightServer server(Mode::kOverClaim);
  auto stream = ZerobusStream::Open(ScriptedOptions(server)).ValueOrDie();
  auto pieces = stream->IngestArrowBatch(FlightTestRows(0, 100));
  std::vector<arrow::Status> errors;
  EXPECT_EQ(WaitPieces(pieces, &errors), 0);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_FALSE(IsRetryable(errors[0]));
  EXPECT_THAT(errors[0].message(), HasSubstr("claims 105 records, but only 100"));
  EXPECT_EQ(stream->state(), StreamState::kFailed);
  EXPECT_EQ(server.calls().size(), 1u);
  auto unacked = stream->TakeUnacked();
  ASSERT_EQ(unacked.size(), 1u);
  ASSERT_NE(unacked[0].rows, nullptr);
  EXPECT_TRUE(unacked[0].rows->Equals(*FlightTestRows(0, 100)));
  EXPECT_EQ(unacked[0].sends, 1);
}

TEST(FlightStream, SchemaRejectionNamesTheCauses) {
  ScriptedFlightServer server(Mode::kSchemaReject);
  auto stream = ZerobusStream::Open(ScriptedOptions(server));
  ASSERT_FALSE(stream.ok());
  EXPECT_FALSE(IsRetryable(stream.status()));
  EXPECT_THAT(stream.status().message(), HasSubstr("schema rejected by the server"));
  EXPECT_THAT(stream.status().message(), HasSubstr("FIELD_NOT_IN_TABLE,FIELD_COUNT_MISMATCH"));
  EXPECT_THAT(stream.status().message(), HasSubstr("field 'extra' is not in the table"));
  EXPECT_EQ(server.calls().size(), 1u);
}

TEST(FlightStream, BadBatchesAreRefusedBeforeAnythingIsSent) {
  ScriptedFlightServer server(Mode::kNormal);
  auto stream = ZerobusStream::Open(ScriptedOptions(server)).ValueOrDie();
  // utf8 instead of large_utf8
  auto utf8_schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                                    arrow::field("name", arrow::utf8())});
  auto utf8 = arrow::RecordBatch::Make(utf8_schema, 1,
                                       {ArrayFromJson(arrow::int64(), "[1]"),
                                        ArrayFromJson(arrow::utf8(), R"(["a"])")});
  auto pieces = stream->IngestArrowBatch(utf8);
  ASSERT_EQ(pieces.size(), 1u);
  ASSERT_FALSE(pieces[0].ack.result().ok());
  EXPECT_THAT(pieces[0].ack.result().status().message(),
              HasSubstr("field 1 'name' is string in the batch but large_string"));
  EXPECT_EQ(pieces[0].range.end, 1);

  auto empty = stream->IngestArrowBatch(FlightTestRows(0, 0));
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_THAT(empty[0].ack.result().status().message(), HasSubstr("at least one row"));
  EXPECT_FALSE(stream->IngestArrowBatch(nullptr)[0].ack.result().ok());

  auto record = stream->IngestRecord(std::string("x"));
  ASSERT_FALSE(record.ok());
  EXPECT_THAT(record.status().message(), HasSubstr("takes only IngestArrowBatch"));
  ASSERT_TRUE(stream->Close().ok());
  EXPECT_TRUE(server.calls()[0].pieces.empty());
}

TEST(FlightStream, OptionsAreChecked) {
  ScriptedFlightServer server(Mode::kNormal);
  auto o = ScriptedOptions(server);
  o.arrow_schema = nullptr;
  auto st = ZerobusStream::Open(o).status();
  EXPECT_THAT(st.message(), HasSubstr("arrow_schema"));
  o = ScriptedOptions(server);
  o.flight_piece_bytes = 0;
  EXPECT_THAT(ZerobusStream::Open(o).status().message(), HasSubstr("flight_piece_bytes"));
  o = ScriptedOptions(server);
  o.arrow_schema = arrow::schema(
      {arrow::field("l", arrow::list(arrow::dictionary(arrow::int8(), arrow::utf8())))});
  EXPECT_THAT(ZerobusStream::Open(o).status().message(), HasSubstr("field 0 'l'"));
  EXPECT_TRUE(server.calls().empty());
}

TEST(FlightStream, DictionaryColumnsGoOutDecoded) {
  ScriptedFlightServer server(Mode::kNormal);
  auto dict_type = arrow::dictionary(arrow::int32(), arrow::large_utf8());
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("name", dict_type)});
  auto o = ScriptedOptions(server);
  o.arrow_schema = schema;
  auto stream = ZerobusStream::Open(o).ValueOrDie();
  auto names = arrow::DictionaryArray::FromArrays(
                   dict_type, ArrayFromJson(arrow::int32(), "[0, 1, null, 0]"),
                   ArrayFromJson(arrow::large_utf8(), R"(["a", "b"])"))
                   .ValueOrDie();
  auto batch = arrow::RecordBatch::Make(
      schema, 4, {ArrayFromJson(arrow::int64(), "[1, 2, 3, 4]"), names});
  EXPECT_EQ(WaitPieces(stream->IngestArrowBatch(batch)), 1);
  ASSERT_TRUE(stream->Close().ok());
  auto call = server.calls()[0];
  EXPECT_TRUE(call.schema->Equals(*FlightTestSchema(), false)) << call.schema->ToString();
  ASSERT_EQ(call.pieces.size(), 1u);
  EXPECT_TRUE(call.pieces[0].rows->column(1)->Equals(
      *ArrayFromJson(arrow::large_utf8(), R"(["a", "b", null, "a"])")));
}

// ---- against the emulator ----------------------------------------------------------------------

class FlightEmulatorTest : public ::testing::Test {
 protected:
  static constexpr const char* kTable = "main.default.flight_rows";

  void SetUp() override { Start(EmulatorTestOptions(dir_.path())); }
  void Start(emulator::EmulatorOptions options) {
    emu_ = StartEmulator(std::move(options));
    ASSERT_NE(emu_, nullptr);
  }
  // OAuth against the emulator, the table created from the stream's schema on first use.
  StreamOptions Options(const std::string& table = kTable) {
    StreamOptions o = FastOptions(*emu_, table);
    o.record_type = RecordType::kArrow;
    o.descriptor.reset();
    o.arrow_schema = FlightTestSchema();
    return o;
  }
  void AddFault(const std::string& json) {
    auto rule = emulator::FaultRuleFromJson(nlohmann::json::parse(json));
    ASSERT_TRUE(rule.ok()) << rule.status().ToString();
    emu_->faults().Add(*rule);
  }
  // (id, name) of every row of the table, in file order.
  std::vector<std::pair<int64_t, std::optional<std::string>>> TableRows(
      const std::string& table = kTable) {
    std::vector<std::pair<int64_t, std::optional<std::string>>> rows;
    auto t = ReadDeltaTable(*emu_, table);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok() || !*t) return rows;
    auto flat = (*t)->CombineChunks().ValueOrDie();
    auto ids = std::static_pointer_cast<arrow::Int64Array>(flat->GetColumnByName("id")->chunk(0));
    auto names = flat->GetColumnByName("name")->chunk(0);
    for (int64_t i = 0; i < flat->num_rows(); ++i) {
      std::optional<std::string> name;
      if (names->IsValid(i)) {
        name = names->type_id() == arrow::Type::LARGE_STRING
                   ? std::string(std::static_pointer_cast<arrow::LargeStringArray>(names)->GetView(i))
                   : std::string(std::static_pointer_cast<arrow::StringArray>(names)->GetView(i));
      }
      rows.emplace_back(ids->Value(i), std::move(name));
    }
    return rows;
  }
  static std::vector<std::pair<int64_t, std::optional<std::string>>> Expected(int64_t n) {
    std::vector<std::pair<int64_t, std::optional<std::string>>> rows;
    for (int64_t i = 0; i < n; ++i) {
      rows.emplace_back(i, i % 7 == 3 ? std::nullopt
                                      : std::optional<std::string>("row-" + std::to_string(i)));
    }
    return rows;
  }
  static std::set<int64_t> Ids(const std::vector<std::pair<int64_t, std::optional<std::string>>>& r) {
    std::set<int64_t> ids;
    for (const auto& [id, name] : r) ids.insert(id);
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(FlightEmulatorTest, RowsLandInTheTableAndReadBackEqual) {
  auto o = Options();
  o.ipc_compression = IpcCompression::kZstd;
  o.flight_piece_bytes = 64 * 1024;  // the large batch goes as many pieces
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  std::vector<ZerobusStream::ArrowPiece> all;
  for (int b = 0; b < 10; ++b) {
    for (auto& p : (*stream)->IngestArrowBatch(FlightTestRows(b * 1000, 1000))) all.push_back(p);
  }
  auto large = (*stream)->IngestArrowBatch(FlightTestRows(10'000, 50'000));
  EXPECT_GT(large.size(), 5u);
  for (auto& p : large) all.push_back(p);
  EXPECT_EQ(WaitPieces(all), static_cast<int64_t>(all.size()));
  ASSERT_TRUE((*stream)->Close().ok());
  EXPECT_EQ(TableRows(), Expected(60'000));
  const auto totals = StreamTotals(*emu_, kTable);
  EXPECT_EQ(totals.streams, 1);
  EXPECT_EQ(totals.requests, static_cast<int64_t>(all.size()));
  EXPECT_EQ(totals.rows, 60'000);
  EXPECT_EQ((*stream)->stats().records_acked, 60'000);
}

TEST_F(FlightEmulatorTest, StreamEndedMidwayReopensAndReplaysTheUnackedRows) {
  AddFault(R"({"end_stream": {"after_requests": 3, "code": "UNAVAILABLE"}, "times": 1})");
  auto stream = ZerobusStream::Open(Options());
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  std::vector<ZerobusStream::ArrowPiece> all;
  for (int b = 0; b < 10; ++b) {
    for (auto& p : (*stream)->IngestArrowBatch(FlightTestRows(b * 100, 100))) all.push_back(p);
  }
  EXPECT_EQ(WaitPieces(all), 10);
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.rpcs_opened, 2);
  auto rows = TableRows();
  EXPECT_EQ(Ids(rows), Ids(Expected(1000)));  // every row at least once
  // At-least-once: only rows sent again can be there twice.
  EXPECT_GE(static_cast<int64_t>(rows.size()), 1000);
  EXPECT_LE(static_cast<int64_t>(rows.size()), 1000 + st.records_replayed);
}

TEST_F(FlightEmulatorTest, PartlyAckedPieceReplaysOnlyItsUnackedSuffix) {
  // The server acks 1234 rows of the last of five pieces, then ends the DoPut: that piece is
  // durable whole, so its unacked suffix lands twice (at-least-once) and nothing else does.
  constexpr int64_t kAcked = 1234;
  AddFault(R"({"partial_ack": {"after_messages": 5, "rows": 1234}, "times": 1})");
  auto batch = FlightTestRows(0, 20'000);
  auto o = Options();
  o.flight_piece_bytes = PieceBytesFor(*batch, 5);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto pieces = (*stream)->IngestArrowBatch(batch);
  ASSERT_EQ(pieces.size(), 5u);
  const RecordRange last = pieces.back().range;
  ASSERT_GT(last.end - last.begin, kAcked);
  EXPECT_EQ(WaitPieces(pieces), 5);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto& ack = pieces[i].ack.result();
    ASSERT_TRUE(ack.ok()) << ack.status().ToString();
    EXPECT_EQ(ack->num_records, pieces[i].range.end - pieces[i].range.begin);
    EXPECT_EQ(ack->sends, i + 1 == pieces.size() ? 2 : 1) << "piece " << i;
  }
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.rpcs_opened, 2);
  EXPECT_EQ(st.requests_replayed, 1);
  EXPECT_EQ(st.records_replayed, last.end - last.begin - kAcked);
  EXPECT_EQ(st.records_acked, 20'000);

  auto rows = TableRows();
  auto expected = Expected(20'000);
  for (int64_t id = last.begin + kAcked; id < last.end; ++id) expected.push_back(expected[id]);
  std::sort(rows.begin(), rows.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(rows, expected);
  const auto totals = StreamTotals(*emu_, kTable);
  EXPECT_EQ(totals.streams, 2);
  EXPECT_EQ(totals.requests, 6);
}

TEST_F(FlightEmulatorTest, CloseSignalRotatesWithoutReplayingAckedRows) {
  AddFault(R"({"close_signal": {"after_requests": 2, "duration_ms": 2000}, "times": 1})");
  auto stream = ZerobusStream::Open(Options());
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  std::vector<ZerobusStream::ArrowPiece> all;
  for (int b = 0; b < 6; ++b) {
    auto pieces = (*stream)->IngestArrowBatch(FlightTestRows(b * 100, 100));
    EXPECT_EQ(WaitPieces(pieces), 1);
  }
  ASSERT_TRUE((*stream)->Close().ok());
  const StreamStats st = (*stream)->stats();
  EXPECT_EQ(st.close_signals, 1);
  EXPECT_EQ(st.rpcs_opened, 2);
  EXPECT_EQ(st.records_replayed, 0);
  EXPECT_EQ(TableRows(), Expected(600));
}

TEST_F(FlightEmulatorTest, WithheldAcksTimeOutAndTheRowsGoAgainOnANewDoPut) {
  AddFault(R"({"withhold_acks": true})");
  auto o = Options();
  o.server_lack_of_ack_timeout = std::chrono::milliseconds(400);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto pieces = (*stream)->IngestArrowBatch(FlightTestRows(0, 100));
  // The first DoPut times out; the acks flow again for the next one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*stream)->stats().rpc_failures == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  emu_->faults().Clear();
  ASSERT_EQ(WaitPieces(pieces), 1);
  EXPECT_GE(pieces[0].ack.result()->sends, 2);
  ASSERT_TRUE((*stream)->Close().ok());
  auto rows = TableRows();
  EXPECT_EQ(Ids(rows), Ids(Expected(100)));
  EXPECT_GE(rows.size(), 200u);  // stored by the first DoPut (never acked) and again
}

TEST_F(FlightEmulatorTest, SchemaRejectionNamesTheServersCauses) {
  auto options = EmulatorTestOptions(dir_.path());
  options.strict = true;
  options.tables = {{"main.default.declared",
                     arrow::schema({arrow::field("id", arrow::int64(), false),
                                    arrow::field("name", arrow::utf8())})}};
  emu_.reset();
  Start(std::move(options));
  auto o = Options("main.default.declared");
  o.arrow_schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                                  arrow::field("name", arrow::utf8()),
                                  arrow::field("extra", arrow::int32())});
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_FALSE(IsRetryable(stream.status()));
  const std::string message = stream.status().message();
  EXPECT_THAT(message, HasSubstr("schema rejected by the server"));
  EXPECT_THAT(message, HasSubstr("TYPE_INCOMPATIBLE"));
  EXPECT_THAT(message, HasSubstr("FIELD_NOT_IN_TABLE"));
  EXPECT_THAT(message, HasSubstr("Arrow Flight schema validation failed"));
  EXPECT_THAT(message, HasSubstr("error code 8001"));
}

TEST_F(FlightEmulatorTest, AWrongSecretIsRefusedAtOpen) {
  auto o = Options();
  o.headers_provider = OAuthProvider(*emu_, kTable, nullptr, "not-the-secret");
  auto stream = ZerobusStream::Open(o);
  ASSERT_FALSE(stream.ok());
  EXPECT_FALSE(IsRetryable(stream.status()));
}

}  // namespace
}  // namespace arrow_zerobus::testing
