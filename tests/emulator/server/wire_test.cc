// The ingest fast path (ParseIngestWire) against protobuf's own parser: same offset and records
// for every request protobuf writes, and a refusal (fall back to the generated classes) for
// everything it does not handle exactly.
#include <random>

#include <gtest/gtest.h>

#include "server/stream_service_internal.h"
#include "server_test_util.h"

namespace arrow_zerobus::emulator::testing {
namespace {

std::vector<std::string_view> Parse(const std::string& bytes, WireIngest* out, bool* ok) {
  std::vector<std::string_view> records;
  *ok = ParseIngestWire(bytes, out, &records);
  return records;
}

TEST(IngestWire, MatchesProtobufOnRandomRequests) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 500; ++i) {
    zb::EphemeralStreamRequest r;
    int64_t offset = static_cast<int64_t>(rng() % 1000000) - (i % 7 == 0 ? 500000 : 0);
    bool batch = rng() % 2, json = rng() % 2;
    std::vector<std::string> recs;
    size_t n = batch ? rng() % 20 : 1;
    for (size_t k = 0; k < n; ++k) {
      std::string rec(rng() % 300, '\0');
      for (char& c : rec) c = static_cast<char>(rng());
      recs.push_back(rec);
    }
    if (batch && json) r = JsonBatch(offset, recs);
    if (batch && !json) r = ProtoBatch(offset, recs);
    if (!batch && json) r = JsonRecord(offset, recs[0]);
    if (!batch && !json) r = ProtoRecord(offset, recs[0]);
    std::string bytes = r.SerializeAsString();
    WireIngest w;
    bool ok;
    auto views = Parse(bytes, &w, &ok);
    if (batch && n == 0) {
      // An empty batch message has no field at all: protobuf's exact semantics decide.
      continue;
    }
    ASSERT_TRUE(ok) << i;
    EXPECT_EQ(w.offset, offset);
    EXPECT_EQ(w.json, json);
    EXPECT_EQ(w.batch, batch);
    ASSERT_EQ(views.size(), recs.size());
    for (size_t k = 0; k < recs.size(); ++k) EXPECT_EQ(views[k], recs[k]);
  }
}

TEST(IngestWire, MutatedBytesNeverDisagreeWithProtobuf) {
  // Whenever the fast path accepts bytes, protobuf must parse them to the same request.
  std::mt19937_64 rng(7);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    auto r = (i % 2) ? ProtoBatch(static_cast<int64_t>(rng() % 100), {"ab", "cde", "f"})
                     : JsonRecord(static_cast<int64_t>(rng() % 100), R"({"id": 1})");
    std::string bytes = r.SerializeAsString();
    int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) bytes.resize(rng() % (bytes.size() + 1));
    WireIngest w;
    bool ok;
    auto views = Parse(bytes, &w, &ok);
    if (!ok) continue;
    ++accepted;
    zb::EphemeralStreamRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << i << " " << ::testing::PrintToString(bytes);
    std::vector<std::string> expected;
    int64_t offset;
    if (parsed.has_ingest_record_batch()) {
      const auto& b = parsed.ingest_record_batch();
      ASSERT_TRUE(b.has_offset_id());
      offset = b.offset_id();
      ASSERT_EQ(w.json, b.has_json_batch());
      for (const auto& x : b.has_json_batch() ? b.json_batch().records()
                                             : b.proto_encoded_batch().records()) {
        expected.push_back(x);
      }
    } else {
      ASSERT_TRUE(parsed.has_ingest_record()) << i;
      const auto& rec = parsed.ingest_record();
      ASSERT_TRUE(rec.has_offset_id());
      offset = rec.offset_id();
      ASSERT_EQ(w.json, rec.has_json_record());
      expected.push_back(rec.has_json_record() ? rec.json_record() : rec.proto_encoded_record());
    }
    EXPECT_EQ(w.offset, offset) << i;
    ASSERT_EQ(views.size(), expected.size()) << i;
    for (size_t k = 0; k < views.size(); ++k) EXPECT_EQ(views[k], expected[k]) << i;
  }
  EXPECT_GT(accepted, 100);  // the property was exercised, not vacuous
}

TEST(IngestWire, UnknownFieldsAreSkipped) {
  auto r = ProtoBatch(7, {"a", "bc"});
  r.mutable_unknown_fields()->AddVarint(99, 5);
  r.mutable_ingest_record_batch()->mutable_unknown_fields()->AddLengthDelimited(50, "zz");
  r.mutable_ingest_record_batch()->mutable_proto_encoded_batch()->mutable_unknown_fields()->AddFixed64(9, 1);
  std::string bytes = r.SerializeAsString();  // views point into it
  WireIngest w;
  bool ok;
  auto views = Parse(bytes, &w, &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(w.offset, 7);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[1], "bc");
}

TEST(IngestWire, FallsBackForEverythingElse) {
  std::vector<std::pair<std::string, std::string>> cases;
  auto desc = RowDescriptor();
  cases.push_back({"create_stream", CreateRequest("a.b.c", &desc).SerializeAsString()});
  {
    auto r = ProtoRecord(0, "x");
    r.mutable_ingest_record()->clear_offset_id();
    cases.push_back({"no offset", r.SerializeAsString()});
  }
  {
    zb::EphemeralStreamRequest r;
    r.mutable_ingest_record()->set_offset_id(3);
    cases.push_back({"no record", r.SerializeAsString()});
  }
  cases.push_back({"empty message", ""});
  std::string two = ProtoRecord(0, "x").SerializeAsString() + ProtoRecord(1, "y").SerializeAsString();
  cases.push_back({"payload twice", two});
  std::string full = ProtoBatch(1, {"abc", "def"}).SerializeAsString();
  cases.push_back({"truncated", full.substr(0, full.size() - 2)});
  cases.push_back({"garbage", std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11)});
  cases.push_back({"offset as bytes", std::string("\x12\x03\x0a\x01\x00", 5)});
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    WireIngest w;
    bool ok = true;
    auto views = Parse(bytes, &w, &ok);
    EXPECT_FALSE(ok);
    EXPECT_TRUE(views.empty());
  }
}

}  // namespace
}  // namespace arrow_zerobus::emulator::testing
