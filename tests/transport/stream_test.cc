// ZerobusStream against the in-process emulator over loopback: the paths without faults.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

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
    for (auto& f : s.IngestEncodedBatch(keep.back())) futures.push_back(f);
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
  ASSERT_EQ(WaitAll(fs), static_cast<int64_t>(fs.size()));
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

// ---- flow control, timeouts, close/abort, callbacks, concurrency, bad input ---------------------

using Clock = std::chrono::steady_clock;

class StreamControlTest : public StreamTest {
 protected:
  void HoldAcks() {
    emulator::FaultRule r;
    r.table = kTable;
    r.withhold_acks = true;
    emu_->faults().Add(r);
  }
  std::vector<EncodedBatch> batches_;
  arrow::Result<arrow::Future<IngestAck>> Send(ZerobusStream& s, int64_t first_id, int64_t rows) {
    batches_.push_back(EncodeRows(*MakeRows(first_id, rows)));
    return s.IngestChunk(batches_.back(), batches_.back().chunks[0]);
  }
};

TEST_F(StreamControlTest, RejectWhenFullByRequestsAndByBytes) {
  HoldAcks();
  auto o = FastOptions(*emu_, kTable);
  o.when_full = FullPolicy::kReject;
  o.max_inflight_requests = 2;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  ASSERT_TRUE(Send(**stream, 0, 10).ok());
  ASSERT_TRUE(Send(**stream, 10, 10).ok());
  const auto start = Clock::now();
  auto third = Send(**stream, 20, 10);
  EXPECT_LT(Clock::now() - start, milliseconds(100));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(GetErrorKind(third.status()), ErrorKind::kTransmission);
  EXPECT_TRUE(IsRetryable(third.status()));
  EXPECT_THAT(third.status().message(), ::testing::HasSubstr("stream is full: 2 requests"));
  EXPECT_THAT(third.status().message(), ::testing::HasSubstr("max_inflight_requests=2"));
  EXPECT_EQ((*stream)->stats().requests_admitted, 2);
  (*stream)->Abort();

  auto ob = FastOptions(*emu_, kTable);
  ob.when_full = FullPolicy::kReject;
  ob.max_inflight_bytes = 100;
  auto s2 = ZerobusStream::Open(ob);
  ASSERT_TRUE(s2.ok());
  // One request larger than the byte limit is admitted when nothing else is in flight.
  ASSERT_TRUE(Send(**s2, 0, 50).ok());
  auto next = Send(**s2, 50, 1);
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(next.status().message(), ::testing::HasSubstr("max_inflight_bytes=100"));
}

TEST_F(StreamControlTest, EncodedBatchGetsOneOutcomePerChunkEvenWhenRefused) {
  HoldAcks();
  auto o = FastOptions(*emu_, kTable);
  o.when_full = FullPolicy::kReject;
  o.max_inflight_requests = 2;
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto batch = EncodeRows(*MakeRows(0, 200), 400);
  ASSERT_GE(batch.chunks.size(), 4u);
  auto fs = (*stream)->IngestEncodedBatch(batch);
  ASSERT_EQ(fs.size(), batch.chunks.size());
  EXPECT_FALSE(fs[0].is_finished());
  EXPECT_FALSE(fs[1].is_finished());
  for (size_t i = 2; i < fs.size(); ++i) {
    ASSERT_TRUE(fs[i].is_finished());
    EXPECT_THAT(fs[i].status().message(), ::testing::HasSubstr("stream is full"));
  }
  emu_->faults().Clear();
  EXPECT_EQ(WaitAll(fs), 2);
  EXPECT_TRUE((*stream)->Close().ok());
  EXPECT_EQ(ReadDeltaIds(*emu_, kTable)->size(),
            static_cast<size_t>(batch.chunks[1].end - batch.chunks[0].begin));
}

TEST_F(StreamControlTest, BlockWaitsForRoomAndGivesUpAfterBlockTimeout) {
  HoldAcks();
  auto o = FastOptions(*emu_, kTable);
  o.max_inflight_requests = 1;
  o.block_timeout = milliseconds(200);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto first = Send(**stream, 0, 10);
  ASSERT_TRUE(first.ok());
  auto start = Clock::now();
  auto blocked = Send(**stream, 10, 10);
  auto took = Clock::now() - start;
  ASSERT_FALSE(blocked.ok());
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_THAT(blocked.status().message(), ::testing::HasSubstr("waiting for room (block_timeout)"));
  EXPECT_TRUE(IsRetryable(blocked.status()));

  // Acks arriving free the room: a blocked call proceeds.
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(100));
    emu_->faults().Clear();
  });
  start = Clock::now();
  auto later = Send(**stream, 20, 10);
  release.join();
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  EXPECT_GE(Clock::now() - start, milliseconds(90));
  std::vector<arrow::Future<IngestAck>> fs{*first, *later};
  EXPECT_EQ(WaitAll(fs), 2);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(StreamControlTest, FlushTimesOutWithoutFailingAnything) {
  HoldAcks();
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok());
  auto f = Send(**stream, 0, 10);
  ASSERT_TRUE(f.ok());
  const auto start = Clock::now();
  auto st = (*stream)->Flush(milliseconds(200));
  const auto took = Clock::now() - start;
  ASSERT_FALSE(st.ok());
  EXPECT_GE(took, milliseconds(190));
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_THAT(st.message(), ::testing::HasSubstr("flush timed out after 200 ms with 1 requests unacked"));
  EXPECT_TRUE(IsRetryable(st));
  EXPECT_FALSE(f->is_finished());
  emu_->faults().Clear();
  EXPECT_TRUE((*stream)->Flush().ok());
  EXPECT_TRUE(f->status().ok());
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(StreamControlTest, CloseWhoseFlushTimesOutFailsWhatIsPendingAndGivesItBack) {
  HoldAcks();
  auto o = FastOptions(*emu_, kTable);
  o.flush_timeout = milliseconds(200);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok());
  auto f1 = Send(**stream, 0, 10);
  auto f2 = Send(**stream, 10, 5);
  ASSERT_TRUE(f1.ok() && f2.ok());
  auto st = (*stream)->Close();
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), ::testing::HasSubstr("flush timed out"));
  ASSERT_TRUE(f1->is_finished() && f2->is_finished());
  EXPECT_THAT(f1->status().message(), ::testing::HasSubstr("close: flush timed out"));
  EXPECT_EQ((*stream)->state(), StreamState::kFailed);
  auto unacked = (*stream)->TakeUnacked();
  ASSERT_EQ(unacked.size(), 2u);
  EXPECT_EQ(unacked[0].num_records, 10);
  EXPECT_EQ(unacked[1].num_records, 5);
  EXPECT_EQ(unacked[1].bytes, batches_[1].framed(batches_[1].chunks[0]));
  // Close again reports the same outcome; Abort after it does nothing.
  EXPECT_EQ((*stream)->Close().message(), st.message());
  (*stream)->Abort();
  EXPECT_TRUE((*stream)->TakeUnacked().empty());
}

TEST_F(StreamControlTest, AbortFailsPendingRequestsOnce) {
  HoldAcks();
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok());
  auto f = Send(**stream, 0, 10);
  ASSERT_TRUE(f.ok());
  (*stream)->Abort();
  ASSERT_TRUE(f->is_finished());
  EXPECT_THAT(f->status().message(), ::testing::HasSubstr("aborted by the caller"));
  EXPECT_FALSE(IsRetryable(f->status()));
  EXPECT_EQ((*stream)->TakeUnacked().size(), 1u);
  (*stream)->Abort();
  auto after = Send(**stream, 10, 1);
  ASSERT_FALSE(after.ok());
  EXPECT_THAT(after.status().message(), ::testing::HasSubstr("aborted"));
  EXPECT_EQ((*stream)->stats().requests_failed, 1);
}

TEST_F(StreamControlTest, ClosedStreamRefusesNewRequests) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Close().ok());
  ASSERT_TRUE((*stream)->Close().ok());
  auto f = Send(**stream, 0, 1);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), ::testing::HasSubstr("is closed"));
  EXPECT_TRUE((*stream)->Flush().ok());
}

TEST_F(StreamControlTest, IdleStreamDoesNotTimeOut) {
  auto o = FastOptions(*emu_, kTable);
  o.server_lack_of_ack_timeout = milliseconds(100);
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok());
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ((*stream)->stats().rpc_failures, 0);
  EXPECT_EQ((*stream)->state(), StreamState::kOpen);
  auto f = Send(**stream, 0, 10);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*stream)->Flush().ok());
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ((*stream)->stats().rpc_failures, 0);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(StreamControlTest, HugeTimeoutsMeanNoTimeout) {
  auto o = FastOptions(*emu_, kTable);
  o.server_lack_of_ack_timeout = milliseconds::max();
  o.block_timeout = milliseconds::max();
  o.flush_timeout = milliseconds::max();
  o.recovery_timeout = milliseconds::max();
  o.recovery_backoff_max = milliseconds::max();
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  auto f = Send(**stream, 0, 10);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*stream)->Flush(milliseconds::max()).ok());
  EXPECT_TRUE(f->result().ok());
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(StreamControlTest, CallbacksRunOnceAndMayIngestButNotFlush) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok());
  ZerobusStream* s = stream->get();
  std::atomic<int> calls{0};
  arrow::Status flush_from_callback;
  arrow::Future<IngestAck> chained;
  std::mutex mu;
  auto extra = EncodeRows(*MakeRows(100, 5));
  auto f = Send(*s, 0, 10);
  ASSERT_TRUE(f.ok());
  f->AddCallback([&](const arrow::Result<IngestAck>& r) {
    ++calls;
    ASSERT_TRUE(r.ok());
    std::lock_guard<std::mutex> lk(mu);
    flush_from_callback = s->Flush();
    auto next = s->IngestChunk(extra, extra.chunks[0]);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    chained = *next;
  });
  ASSERT_TRUE(s->Flush().ok());
  std::lock_guard<std::mutex> lk(mu);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_THAT(flush_from_callback.message(), ::testing::HasSubstr("completion callback"));
  ASSERT_TRUE(chained.is_valid());
  EXPECT_TRUE(chained.result().ok());
  EXPECT_TRUE(s->Close().ok());
  EXPECT_EQ(ReadDeltaIds(*emu_, kTable)->size(), 15u);
}

TEST_F(StreamControlTest, ConcurrentProducersAllLandWithDistinctSeqs) {
  auto o = FastOptions(*emu_, kTable);
  o.max_inflight_requests = 8;  // producers also contend for room
  auto stream = ZerobusStream::Open(o);
  ASSERT_TRUE(stream.ok());
  constexpr int kThreads = 4, kPerThread = 40, kRows = 25;
  std::vector<std::vector<arrow::Future<IngestAck>>> futures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto b = EncodeRows(*MakeRows((t * kPerThread + i) * kRows, kRows));
        auto f = (*stream)->IngestChunk(b, b.chunks[0]);
        ASSERT_TRUE(f.ok()) << f.status().ToString();
        futures[t].push_back(*f);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE((*stream)->Close().ok());
  std::set<int64_t> seqs;
  for (auto& per : futures) {
    int64_t last = -1;
    for (auto& f : per) {
      ASSERT_TRUE(f.result().ok());
      EXPECT_GT(f.result()->seq, last);  // one thread's requests keep their order
      last = f.result()->seq;
      seqs.insert(last);
    }
  }
  EXPECT_EQ(seqs.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*seqs.rbegin(), kThreads * kPerThread - 1);
  auto ids = ReadDeltaIds(*emu_, kTable);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::set<int64_t>(ids->begin(), ids->end()).size(),
            static_cast<size_t>(kThreads * kPerThread * kRows));
}

TEST_F(StreamControlTest, BadInputIsRefusedBeforeQueueing) {
  auto stream = ZerobusStream::Open(FastOptions(*emu_, kTable));
  ASSERT_TRUE(stream.ok());
  auto& s = **stream;
  auto batch = EncodeRows(*MakeRows(0, 10));
  auto framed = batch.framed(batch.chunks[0]);

  auto zero = s.IngestFramedBatch(batch.buffer, framed, 0);
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), ::testing::HasSubstr("at least one record"));
  auto mismatch = s.IngestFramedBatch(batch.buffer, framed, 9);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.status().message(),
              ::testing::HasSubstr("framed bytes hold 10 records but num_records=9"));
  auto broken = s.IngestFramedBatch(batch.buffer, framed.substr(0, framed.size() - 1), 10);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(GetErrorKind(broken.status()), ErrorKind::kConversion);
  EXPECT_THAT(broken.status().message(), ::testing::HasSubstr("malformed after record 9"));
  auto range = s.IngestChunk(batch, RecordRange{5, 11});
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.status().message(), ::testing::HasSubstr("chunk [5, 11)"));
  auto empty = s.IngestChunk(batch, RecordRange{3, 3});
  ASSERT_FALSE(empty.ok());
  std::string huge(kDefaultMaxRequestBytes, 'x');
  auto too_big = s.IngestRecord(huge);
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(too_big.status().message(), ::testing::HasSubstr("exceeds the limit"));
  EXPECT_EQ(s.stats().requests_admitted, 0);
  EXPECT_TRUE(s.Close().ok());
}

}  // namespace
}  // namespace arrow_zerobus::testing
