// What ZerobusWrapper costs over the stream client it drives, end to end into the in-process
// emulator (null sink, OAuth, loopback gRPC):
//   baseline  encode + ZerobusStream::IngestEncodedBatch + wait for every ack, per batch
//   wrapper   ZerobusWrapper::SendBatch per batch (encoder cache, per-row accounting,
//             TransmissionResult), 1 stream, one sender
//   wrapper   the same from 4 threads over 2 streams (pipelining)
//   wrapper   record_type json, 1 stream, one sender (rows transcoded to JSON text), and the
//             transcoding alone
// Each figure is the best of AZ_WRAPPER_REPEAT runs (3) over AZ_WRAPPER_BATCHES batches (16) of
// 32768 rows; the ratio wrapper/baseline is taken in the same process.
//
// Ends with: {"name":"wrapper_send","rows_per_s":..,"baseline_rows_per_s":..,
//             "ratio_vs_stream":..,"concurrent_rows_per_s":..,"json_rows_per_s":..}
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include <arrow/api.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/arrow_zerobus.h"
#include "server/emulator.h"
#include "wrapper/json_rows_internal.h"

namespace {

namespace az = arrow_zerobus;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int64_t kRows = 32 * 1024;
constexpr const char* kClientId = "bench-client";
constexpr const char* kClientSecret = "bench-secret";

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

std::shared_ptr<arrow::Schema> Schema() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), false),
                        arrow::field("device", arrow::utf8()),
                        arrow::field("temperature", arrow::float64()),
                        arrow::field("humidity", arrow::float64()),
                        arrow::field("status", arrow::int32())});
}

std::shared_ptr<arrow::RecordBatch> Batch(int64_t first_id, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto schema = Schema();
  arrow::Int64Builder id;
  arrow::TimestampBuilder ts(schema->field(1)->type(), arrow::default_memory_pool());
  arrow::StringBuilder device;
  arrow::DoubleBuilder temperature, humidity;
  arrow::Int32Builder status;
  for (int64_t i = 0; i < kRows; ++i) {
    (void)id.Append(first_id + i);
    (void)ts.Append(1'750'000'000'000'000 + (first_id + i) * 1000);
    (void)device.Append("dev-" + std::to_string(rng() % 5000));
    (void)temperature.Append(-20.0 + static_cast<double>(rng() % 7000) / 100.0);
    if (rng() % 20 == 0) {
      (void)humidity.AppendNull();
    } else {
      (void)humidity.Append(static_cast<double>(rng() % 10000) / 100.0);
    }
    (void)status.Append(static_cast<int32_t>(rng() % 4));
  }
  return arrow::RecordBatch::Make(
      schema, kRows,
      {id.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), device.Finish().ValueOrDie(),
       temperature.Finish().ValueOrDie(), humidity.Finish().ValueOrDie(),
       status.Finish().ValueOrDie()});
}

az::WrapperConfiguration Config(const az::emulator::Emulator& emu, const std::string& table,
                                int streams) {
  auto c = az::WrapperConfiguration::Make(emu.grpc_endpoint(), table);
  c.client_id = kClientId;
  c.client_secret = az::SecretString(kClientSecret);
  c.unity_catalog_url = emu.http_endpoint();
  c.streams_per_table = streams;
  return c;
}

double RowsPerSecond(int64_t rows, Clock::time_point start) {
  return static_cast<double>(rows) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

// Baseline: the stream client used directly the way the wrapper uses it.
double RunStream(const az::emulator::Emulator& emu,
                 const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  auto encoder = az::RecordBatchEncoder::Make(Schema()).ValueOrDie();
  az::OAuthOptions oauth = az::OAuthOptions::Defaults();
  oauth.unity_catalog_url = emu.http_endpoint();
  oauth.client_id = kClientId;
  oauth.client_secret = az::SecretString(kClientSecret);
  oauth.table_name = "main.bench.stream";
  oauth.workspace_id = "1";
  auto o = az::StreamOptions::Defaults();
  o.endpoint = emu.grpc_endpoint();
  o.table_name = oauth.table_name;
  o.descriptor = encoder->descriptor();
  o.headers_provider = az::MakeOAuthHeadersProvider(oauth).ValueOrDie();
  auto stream = az::ZerobusStream::Open(o).ValueOrDie();
  const auto start = Clock::now();
  int64_t rows = 0;
  for (const auto& b : batches) {
    auto encoded = encoder->Encode(*b).ValueOrDie();
    auto futures = stream->IngestEncodedBatch(encoded);
    for (auto& f : futures) {
      if (!f.status().ok()) std::fprintf(stderr, "ack failed: %s\n", f.status().ToString().c_str());
    }
    rows += encoded.num_records();
  }
  const double rps = RowsPerSecond(rows, start);
  (void)stream->Close();
  return rps;
}

double RunWrapper(const az::emulator::Emulator& emu,
                  const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches, int streams,
                  int threads, bool json = false) {
  auto config = Config(emu, json ? "main.bench.json" : "main.bench.wrapper", streams);
  if (json) config.record_type = az::RecordFormat::kJson;
  auto w = az::ZerobusWrapper::Make(config).ValueOrDie();
  // Open the streams outside the timed part, as the baseline does.
  for (int i = 0; i < streams; ++i) (void)w.SendBatch(*batches[0]->Slice(0, 1));
  std::atomic<int64_t> rows{0};
  std::atomic<size_t> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < batches.size(); i = next++) {
        auto r = w.SendBatch(*batches[i]).ValueOrDie();
        if (r.failed_count > 0) std::fprintf(stderr, "failed rows: %s\n", r.ToString().c_str());
        rows += r.successful_count;
      }
    });
  }
  for (auto& th : pool) th.join();
  const double rps = RowsPerSecond(rows.load(), start);
  (void)w.Shutdown();
  return rps;
}

// The JSON transcoding alone (no network): rows/s of JsonRowsConverter::Convert.
double RunJsonTranscode(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  auto encoder = az::RecordBatchEncoder::Make(Schema()).ValueOrDie();
  auto converter = az::internal::JsonRowsConverter::Make(encoder->descriptor()).ValueOrDie();
  std::vector<az::EncodedBatch> encoded;
  for (const auto& b : batches) encoded.push_back(encoder->Encode(*b).ValueOrDie());
  const auto start = Clock::now();
  int64_t rows = 0;
  for (const auto& e : encoded) rows += converter->Convert(e).ValueOrDie().num_records();
  return RowsPerSecond(rows, start);
}

}  // namespace

int main() {
  const int64_t num_batches = EnvInt("AZ_WRAPPER_BATCHES", 16);
  const int repeat = static_cast<int>(EnvInt("AZ_WRAPPER_REPEAT", 3));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int64_t b = 0; b < num_batches; ++b) {
    batches.push_back(Batch(b * kRows, 42 + static_cast<uint64_t>(b)));
  }

  fs::path dir = fs::temp_directory_path() / ("az_bench_wrapper_" + std::to_string(getpid()));
  auto eo = az::emulator::EmulatorOptions::Defaults();
  eo.data_dir = (dir / "data").string();
  eo.sink = az::emulator::SinkKind::kNull;
  eo.fsync = false;
  eo.principals = {{kClientId, kClientSecret}};
  eo.tables = {{"main.bench.json", Schema()}};  // JSON streams need an existing table
  az::emulator::Emulator emu(eo);
  if (auto st = emu.Start(); !st.ok()) {
    std::fprintf(stderr, "emulator: %s\n", st.ToString().c_str());
    return 1;
  }

  (void)RunStream(emu, batches);  // warm-up
  double stream_rps = 0, wrapper_rps = 0, concurrent_rps = 0, json_rps = 0, transcode_rps = 0;
  for (int i = 0; i < repeat; ++i) {
    // Interleaved so that machine noise hits all three alike.
    stream_rps = std::max(stream_rps, RunStream(emu, batches));
    wrapper_rps = std::max(wrapper_rps, RunWrapper(emu, batches, 1, 1));
    concurrent_rps = std::max(concurrent_rps, RunWrapper(emu, batches, 2, 4));
    json_rps = std::max(json_rps, RunWrapper(emu, batches, 1, 1, /*json=*/true));
    transcode_rps = std::max(transcode_rps, RunJsonTranscode(batches));
  }
  (void)emu.Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);

  std::printf("workload: %lld batches x %lld rows, best of %d\n",
              static_cast<long long>(num_batches), static_cast<long long>(kRows), repeat);
  std::printf("%-40s %10.0f rows/s\n", "stream client (encode+ingest+acks)", stream_rps);
  std::printf("%-40s %10.0f rows/s\n", "ZerobusWrapper, 1 stream, 1 sender", wrapper_rps);
  std::printf("%-40s %10.0f rows/s\n", "ZerobusWrapper, 2 streams, 4 senders", concurrent_rps);
  std::printf("%-40s %10.0f rows/s\n", "ZerobusWrapper, JSON records, 1 stream", json_rps);
  std::printf("%-40s %10.0f rows/s\n", "  of which JSON transcoding alone", transcode_rps);
  nlohmann::json out = {{"name", "wrapper_send"},
                        {"rows_per_s", std::round(wrapper_rps)},
                        {"baseline_rows_per_s", std::round(stream_rps)},
                        {"ratio_vs_stream", std::round(wrapper_rps / stream_rps * 100) / 100},
                        {"concurrent_rows_per_s", std::round(concurrent_rps)},
                        {"json_rows_per_s", std::round(json_rps)},
                        {"json_transcode_rows_per_s", std::round(transcode_rps)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
