// ZerobusStream against the in-process emulator over loopback: the paths without faults.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "arrow_zerobus/errors.h"
#include "client_test_util.h"

namespace arrow_zerobus::testing {
namespace {

using std::chrono::milliseconds;

constexpr const char* kTable = "main.client.rows";

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emu_ = StartEmulator(EmulatorTestOptions(dir_.path()));
    ASSERT_NE(emu_, nullptr);
  }
  TempDir dir_;
  std::unique_ptr<emulator::Emulator> emu_;
};

TEST_F(StreamTest, BatchesAreAckedInOrderAndLandInTheTable) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto& s = **stream;
  EXPECT_EQ(s.state(), StreamState::kOpen);
  EXPECT_FALSE(s.stats().stream_id.empty());

  std::vector<arrow::Future<IngestAck>> futures;
  std::vector<EncodedBatch> keep;
  int64_t rows = 0;
  for (int b = 0; b < 5; ++b) {
    // Small requests so one batch becomes several chunks.
    keep.push_back(EncodeRows(*MakeRows(b * 1000, 1000), 8 * 1024));
    ASSERT_GT(keep.back().chunks.size(), 1u);
    auto fs = s.IngestEncodedBatch(keep.back());
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    for (auto& f : *fs) futures.push_back(f);
    rows += 1000;
  }
  ASSERT_TRUE(s.Flush().ok());
  // Every future is finished once Flush returns, with consecutive seq numbers.
  int64_t expect_seq = 0, acked_records = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(f.is_finished());
    ASSERT_TRUE(f.status().ok()) << f.status().ToString();
    EXPECT_EQ(f.result()->seq, expect_seq++);
    EXPECT_EQ(f.result()->sends, 1);
    acked_records += f.result()->num_records;
  }
  EXPECT_EQ(acked_records, rows);
  ASSERT_TRUE(s.Close().ok());
  EXPECT_EQ(s.state(), StreamState::kClosed);

  auto st = s.stats();
  EXPECT_EQ(st.requests_acked, static_cast<int64_t>(futures.size()));
  EXPECT_EQ(st.records_acked, rows);
  EXPECT_EQ(st.requests_replayed, 0);
  EXPECT_EQ(st.rpcs_opened, 1);
  EXPECT_EQ(st.inflight_requests, 0);

  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  ASSERT_EQ(static_cast<int64_t>(ids->size()), rows);
  std::vector<int64_t> sorted = *ids;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < rows; ++i) ASSERT_EQ(sorted[i], i);
  // The server saw the same number of requests, on one stream.
  auto totals = StreamTotals(*emu_, kTable);
  EXPECT_EQ(totals.streams, 1);
  EXPECT_EQ(totals.requests, static_cast<int64_t>(futures.size()));
}

TEST_F(StreamTest, GeneratedMessagePathSendsTheSameRows) {
  auto o = FastOptions(*emu_, kTable);
  o.zero_copy = false;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto batch = EncodeRows(*MakeRows(0, 3000), 16 * 1024);
  auto fs = (*stream)->IngestEncodedBatch(batch);
  ASSERT_TRUE(fs.ok());
  ASSERT_EQ(WaitAll(*fs), static_cast<int64_t>(fs->size()));
  ASSERT_TRUE((*stream)->Close().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::set<int64_t>(ids->begin(), ids->end()).size(), 3000u);
  EXPECT_EQ(ids->size(), 3000u);
}

TEST_F(StreamTest, SingleRecordsAndFramedBatches) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto batch = EncodeRows(*MakeRows(0, 10));
  std::vector<arrow::Future<IngestAck>> futures;
  for (int64_t i = 0; i < 5; ++i) {
    auto f = (*stream)->IngestRecord(std::string(batch.record(i)));
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    futures.push_back(*f);
  }
  auto f = (*stream)->IngestFramedBatch(batch.buffer, batch.framed({5, 10}), 5);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  futures.push_back(*f);
  ASSERT_EQ(WaitAll(futures), 6);
  EXPECT_EQ(futures.back().result()->num_records, 5);
  ASSERT_TRUE((*stream)->Close().ok());
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  std::vector<int64_t> sorted = *ids;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(StreamTest, JsonRecordsAndBatches) {
  // JSON streams need an existing table.
  emulator::EmulatorOptions o = EmulatorTestOptions(dir_.path() + "/json");
  o.tables.push_back({kTable, RowSchema()});
  auto emu = StartEmulator(o);
  ASSERT_NE(emu, nullptr);
  auto so = FastOptions(*emu, kTable);
  so.record_type = RecordType::kJson;
  so.descriptor.reset();
  auto stream = ZerobusStream::Open(so);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto r = (*stream)->IngestRecord(std::string(R"({"id": 1, "name": "one"})"));
  ASSERT_TRUE(r.ok());
  // A framed JSON batch: 0x0A <len> <text> per record.
  std::string framed;
  for (int id = 2; id <= 4; ++id) {
    std::string rec = "{\"id\": " + std::to_string(id) + "}";
    framed.push_back('\x0a');
    framed.push_back(static_cast<char>(rec.size()));
    framed += rec;
  }
  auto buf = std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(framed.data()),
                                             static_cast<int64_t>(framed.size()));
  auto b = (*stream)->IngestFramedBatch(buf, framed, 3);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  std::vector<arrow::Future<IngestAck>> fs{*r, *b};
  ASSERT_EQ(WaitAll(fs), 2);
  ASSERT_TRUE((*stream)->Close().ok());
  auto ids = ReadDeltaIds(*emu, kTable);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  std::vector<int64_t> sorted = *ids;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int64_t>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace arrow_zerobus::testing
