// Emulator storage throughput for the `iot` schema, 64k-row batches of protobuf records made by
// the project's encoder:
//   emulator_decode_iot: decode + null sink (what the server does per request with --sink null),
//   emulator_delta_iot:  decode + Delta sink, each iteration 16 batches and a durable commit.
// Baseline in the same process: libprotobuf DynamicMessage parsing of the same records (no Arrow
// output), reported as a ratio.
#include <benchmark/benchmark.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <arrow/api.h>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/schema.h"
#include "decode/record_decoder.h"
#include "store/table_store.h"

namespace {

using namespace arrow_zerobus;
using namespace arrow_zerobus::emulator;
namespace pb = google::protobuf;

constexpr int kRows = 64 * 1024;

template <typename T>
T Check(arrow::Result<T> r) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench setup failed: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).ValueOrDie();
}
void Check(const arrow::Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "bench setup failed: %s\n", st.ToString().c_str());
    std::exit(1);
  }
}

struct IotData {
  std::shared_ptr<arrow::Schema> schema;
  DescriptorProto descriptor;
  EncodedBatch encoded;
  std::vector<std::string_view> records;
  int64_t record_bytes = 0;
};

const IotData& Data() {
  static IotData data = [] {
    IotData d;
    d.schema = arrow::schema({
        arrow::field("id", arrow::int64(), false),
        arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), false),
        arrow::field("device_id", arrow::utf8()),
        arrow::field("site", arrow::utf8()),
        arrow::field("temperature", arrow::float64()),
        arrow::field("humidity", arrow::float64()),
        arrow::field("pressure", arrow::float64()),
        arrow::field("voltage", arrow::float64()),
        arrow::field("status", arrow::int32()),
        arrow::field("alarm", arrow::boolean()),
    });
    std::mt19937_64 rng(42);
    arrow::Int64Builder id;
    arrow::TimestampBuilder ts(d.schema->field(1)->type(), arrow::default_memory_pool());
    arrow::StringBuilder device, site;
    arrow::DoubleBuilder measures[4];
    arrow::Int32Builder status;
    arrow::BooleanBuilder alarm;
    const char* sites[] = {"berlin", "paris", "lyon", "oslo", "austin", "osaka"};
    std::uniform_real_distribution<double> value(-50, 150);
    for (int i = 0; i < kRows; ++i) {
      Check(id.Append(i));
      Check(ts.Append(1700000000000000 + i * 1000));
      int len = 8 + static_cast<int>(rng() % 9);
      std::string dev(len, 'a');
      for (auto& c : dev) c = static_cast<char>('a' + rng() % 26);
      Check(device.Append(dev));
      Check(site.Append(sites[rng() % 6]));
      for (auto& m : measures) Check(rng() % 20 == 0 ? m.AppendNull() : m.Append(value(rng)));
      Check(status.Append(static_cast<int32_t>(rng() % 8)));
      Check(alarm.Append(rng() % 10 == 0));
    }
    std::vector<std::shared_ptr<arrow::Array>> columns(10);
    Check(id.Finish(&columns[0]));
    Check(ts.Finish(&columns[1]));
    Check(device.Finish(&columns[2]));
    Check(site.Finish(&columns[3]));
    for (int m = 0; m < 4; ++m) Check(measures[m].Finish(&columns[4 + m]));
    Check(status.Finish(&columns[8]));
    Check(alarm.Finish(&columns[9]));
    auto batch = arrow::RecordBatch::Make(d.schema, kRows, columns);
    auto encoder = Check(RecordBatchEncoder::Make(d.schema));
    d.descriptor = encoder->descriptor();
    d.encoded = Check(encoder->Encode(*batch));
    for (int64_t i = 0; i < d.encoded.num_records(); ++i) {
      d.records.push_back(d.encoded.record(i));
      d.record_bytes += static_cast<int64_t>(d.records.back().size());
    }
    return d;
  }();
  return data;
}

// mb_per_s / rows_per_s per core: bytes over the CPU time of the thread that decodes (the
// machines here are shared, so wall time is reported too but says less).
struct Figures {
  double mb_per_s = 0;
  double rows_per_s = 0;
  double wall_mb_per_s = 0;
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
Figures Measure(int64_t rows, int64_t bytes, double cpu_seconds, double wall_seconds) {
  return Figures{bytes / 1e6 / cpu_seconds, rows / cpu_seconds, bytes / 1e6 / wall_seconds};
}
Figures g_decode, g_delta, g_libprotobuf;

void Report(benchmark::State& state, int64_t rows, int64_t bytes) {
  state.SetItemsProcessed(rows);
  state.SetBytesProcessed(bytes);
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["MB_per_s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}

void BM_DecodeNullSink(benchmark::State& state) {
  const IotData& d = Data();
  TableStoreOptions options;
  options.sink = SinkKind::kNull;
  auto store = Check(TableStore::Open(options));
  auto table = Check(store->OpenForWrite("bench.iot.null", d.descriptor));
  auto decoder = Check(RecordDecoder::MakeProto(d.descriptor, table->schema()));
  int64_t rows = 0, bytes = 0;
  auto start = std::chrono::steady_clock::now();
  double cpu_start = ThreadCpuSeconds();
  for (auto _ : state) {
    auto batch = Check(decoder->Decode(d.records));
    table->Append(std::move(batch), d.record_bytes, [](arrow::Status st) { Check(st); });
    rows += kRows;
    bytes += d.record_bytes;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Report(state, rows, bytes);
  g_decode = Measure(rows, bytes, ThreadCpuSeconds() - cpu_start, seconds);
}
BENCHMARK(BM_DecodeNullSink)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

void BM_DeltaSink(benchmark::State& state) {
  const IotData& d = Data();
  std::string tmpl = (std::filesystem::temp_directory_path() / "az_bench_XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  {
    TableStoreOptions options;
    options.data_dir = dir;
    options.commit_max_rows = 16 * kRows;
    auto store = Check(TableStore::Open(options));
    auto table = Check(store->OpenForWrite("bench.iot.delta", d.descriptor));
    auto decoder = Check(RecordDecoder::MakeProto(d.descriptor, table->schema()));
    int64_t rows = 0, bytes = 0;
    auto start = std::chrono::steady_clock::now();
    double cpu_start = ProcessCpuSeconds();
    for (auto _ : state) {
      for (int b = 0; b < 16; ++b) {
        auto batch = Check(decoder->Decode(d.records));
        table->Append(std::move(batch), d.record_bytes, [](arrow::Status st) { Check(st); });
        rows += kRows;
        bytes += d.record_bytes;
      }
      Check(store->Flush());
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Report(state, rows, bytes);
    state.counters["commits"] = static_cast<double>(table->stats().commits);
    g_delta = Measure(rows, bytes, ProcessCpuSeconds() - cpu_start, seconds);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DeltaSink)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();

// Baseline: libprotobuf's reflection-based parser on the same records.
void BM_LibprotobufParse(benchmark::State& state) {
  const IotData& d = Data();
  pb::DescriptorPool pool;
  pb::FileDescriptorProto file;
  file.set_name("iot.proto");
  *file.add_message_type() = d.descriptor;
  const pb::Descriptor* descriptor = pool.BuildFile(file)->message_type(0);
  pb::DynamicMessageFactory factory;
  std::unique_ptr<pb::Message> message(factory.GetPrototype(descriptor)->New());
  int64_t rows = 0, bytes = 0;
  auto start = std::chrono::steady_clock::now();
  double cpu_start = ThreadCpuSeconds();
  for (auto _ : state) {
    for (const auto& r : d.records) {
      message->ParseFromArray(r.data(), static_cast<int>(r.size()));
      benchmark::DoNotOptimize(message.get());
    }
    rows += kRows;
    bytes += d.record_bytes;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Report(state, rows, bytes);
  g_libprotobuf = Measure(rows, bytes, ThreadCpuSeconds() - cpu_start, seconds);
}
BENCHMARK(BM_LibprotobufParse)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  const IotData& d = Data();
  double avg = static_cast<double>(d.record_bytes) / kRows;
  double ratio = g_libprotobuf.mb_per_s > 0 ? g_decode.mb_per_s / g_libprotobuf.mb_per_s : 0;
  std::printf(
      "{\"name\": \"emulator_decode_iot\", \"mb_per_s\": %.1f, \"rows_per_s\": %.0f, "
      "\"per\": \"core (thread CPU time)\", \"wall_mb_per_s\": %.1f, \"batch_rows\": %d, "
      "\"avg_record_bytes\": %.1f, \"target_mb_per_s\": 500, "
      "\"libprotobuf_parse_mb_per_s\": %.1f, \"ratio_vs_libprotobuf_parse\": %.2f}\n",
      g_decode.mb_per_s, g_decode.rows_per_s, g_decode.wall_mb_per_s, kRows, avg,
      g_libprotobuf.mb_per_s, ratio);
  std::printf(
      "{\"name\": \"emulator_delta_iot\", \"mb_per_s\": %.1f, \"rows_per_s\": %.0f, "
      "\"per\": \"core (process CPU time: decode + Parquet + commit)\", \"wall_mb_per_s\": %.1f, "
      "\"batch_rows\": %d, \"rows_per_commit\": %d, \"fsync\": true}\n",
      g_delta.mb_per_s, g_delta.rows_per_s, g_delta.wall_mb_per_s, kRows, 16 * kRows);
  return 0;
}
