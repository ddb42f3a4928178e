// Encoder throughput on the reference schemas `iot` and `nested` (64k-row batches), against a
// baseline run in the same process: each row built as a libprotobuf DynamicMessage through
// reflection and serialized with SerializeToString.
//
// Rates are per CPU second of the (single) benchmark thread, median of the repetitions.
// Ends with one JSON line per schema:
//   {"name":"encode_iot","rows_per_s":...,"mb_per_s":...,"ratio_vs_dynamic_message":...}
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <benchmark/benchmark.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>

#include "arrow_zerobus/encode.h"

namespace {

namespace pb = google::protobuf;
using arrow_zerobus::RecordBatchEncoder;

constexpr int64_t kRows = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Data.

std::string RandomText(std::mt19937_64& rng, int min_len, int max_len) {
  static const char kAlnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  const int len = min_len + static_cast<int>(rng() % (max_len - min_len + 1));
  std::string s(static_cast<size_t>(len), ' ');
  for (auto& c : s) c = kAlnum[rng() % 36];
  return s;
}

void AppendMaybeNull(arrow::DoubleBuilder* b, std::mt19937_64& rng, double lo, double hi) {
  if (rng() % 100 < 5) {
    (void)b->AppendNull();
  } else {
    (void)b->Append(lo + (hi - lo) * static_cast<double>(rng() % 1000000) / 1e6);
  }
}

std::shared_ptr<arrow::RecordBatch> IotBatch() {
  std::mt19937_64 rng(42);
  auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  auto site_type = arrow::dictionary(arrow::int32(), arrow::utf8());
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64(), false), arrow::field("ts", ts_type, false),
      arrow::field("device_id", arrow::utf8()), arrow::field("site", site_type),
      arrow::field("temperature", arrow::float64()), arrow::field("humidity", arrow::float64()),
      arrow::field("pressure", arrow::float64()), arrow::field("voltage", arrow::float64()),
      arrow::field("status", arrow::int32()), arrow::field("alarm", arrow::boolean())});
  arrow::Int64Builder id;
  arrow::TimestampBuilder ts(ts_type, arrow::default_memory_pool());
  arrow::StringBuilder device;
  arrow::Int32Builder site_index;
  arrow::DoubleBuilder temperature, humidity, pressure, voltage;
  arrow::Int32Builder status;
  arrow::BooleanBuilder alarm;
  const int64_t t0 = 1735689600000000;  // 2025-01-01 in microseconds
  for (int64_t i = 0; i < kRows; ++i) {
    (void)id.Append(1000000 + i);
    (void)ts.Append(t0 + i * 1000 + static_cast<int64_t>(rng() % 1000));
    (void)device.Append("dev-" + RandomText(rng, 4, 12));  // 8-16 chars
    (void)site_index.Append(static_cast<int32_t>(rng() % 16));
    AppendMaybeNull(&temperature, rng, -20, 45);
    AppendMaybeNull(&humidity, rng, 0, 100);
    AppendMaybeNull(&pressure, rng, 950, 1050);
    AppendMaybeNull(&voltage, rng, 3.0, 3.6);
    (void)status.Append(static_cast<int32_t>(rng() % 8 == 0 ? rng() % 600 : 0));
    (void)alarm.Append(rng() % 50 == 0);
  }
  arrow::StringBuilder sites;
  for (int s = 0; s < 16; ++s) (void)sites.Append("site-" + std::to_string(s) + "-" + RandomText(rng, 5, 9));
  auto site = arrow::DictionaryArray::FromArrays(site_type, site_index.Finish().ValueOrDie(),
                                                 sites.Finish().ValueOrDie())
                  .ValueOrDie();
  return arrow::RecordBatch::Make(
      schema, kRows,
      {id.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), device.Finish().ValueOrDie(), site,
       temperature.Finish().ValueOrDie(), humidity.Finish().ValueOrDie(),
       pressure.Finish().ValueOrDie(), voltage.Finish().ValueOrDie(),
       status.Finish().ValueOrDie(), alarm.Finish().ValueOrDie()});
}

// id, device: struct{name, readings: list<struct{sensor, value, ts}>, tags: map<utf8, utf8>}
std::shared_ptr<arrow::RecordBatch> NestedBatch() {
  std::mt19937_64 rng(7);
  auto ts_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
  auto reading_type = arrow::struct_({arrow::field("sensor", arrow::utf8()),
                                      arrow::field("value", arrow::float64()),
                                      arrow::field("ts", ts_type)});
  auto map_type = arrow::map(arrow::utf8(), arrow::utf8());
  auto device_type = arrow::struct_({arrow::field("name", arrow::utf8()),
                                     arrow::field("readings", arrow::list(reading_type)),
                                     arrow::field("tags", map_type)});
  auto schema = arrow::schema({arrow::field("id", arrow::int64(), false),
                               arrow::field("device", device_type)});
  auto* pool = arrow::default_memory_pool();
  arrow::Int64Builder id;
  auto sensor = std::make_shared<arrow::StringBuilder>();
  auto value = std::make_shared<arrow::DoubleBuilder>();
  auto rts = std::make_shared<arrow::TimestampBuilder>(ts_type, pool);
  auto reading = std::make_shared<arrow::StructBuilder>(
      reading_type, pool, std::vector<std::shared_ptr<arrow::ArrayBuilder>>{sensor, value, rts});
  auto readings = std::make_shared<arrow::ListBuilder>(pool, reading);
  auto keys = std::make_shared<arrow::StringBuilder>();
  auto items = std::make_shared<arrow::StringBuilder>();
  auto tags = std::make_shared<arrow::MapBuilder>(pool, keys, items, map_type);
  auto name = std::make_shared<arrow::StringBuilder>();
  arrow::StructBuilder device(device_type, pool, {name, readings, tags});
  static const char* kSensors[] = {"temp", "humidity", "pressure", "co2", "voltage", "light"};
  static const char* kTagKeys[] = {"fw", "zone", "owner"};
  const int64_t t0 = 1735689600000000;
  for (int64_t i = 0; i < kRows; ++i) {
    (void)id.Append(i);
    (void)device.Append();
    (void)name->Append("device-" + RandomText(rng, 4, 10));
    (void)readings->Append();
    for (int r = static_cast<int>(rng() % 7); r > 0; --r) {
      (void)reading->Append();
      (void)sensor->Append(kSensors[rng() % 6]);
      (void)value->Append(static_cast<double>(rng() % 100000) / 100.0);
      (void)rts->Append(t0 + i * 1000 + r);
    }
    (void)tags->Append();
    for (int t = static_cast<int>(rng() % 4); t > 0; --t) {
      (void)keys->Append(kTagKeys[t - 1]);
      (void)items->Append(RandomText(rng, 3, 8));
    }
  }
  return arrow::RecordBatch::Make(schema, kRows, {id.Finish().ValueOrDie(), device.Finish().ValueOrDie()});
}

// ---------------------------------------------------------------------------------------------
// Baseline: Arrow values set through protobuf reflection on a DynamicMessage, then serialized.

class ReflectionFiller {
 public:
  // Sets field `fd` of `msg` from element `i` of `array` (arrays here: the bench's types).
  static void Set(const arrow::Array& array, int64_t i, const pb::FieldDescriptor* fd,
                  pb::Message* msg) {
    if (array.IsNull(i)) return;
    const pb::Reflection* r = msg->GetReflection();
    switch (array.type_id()) {
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP:
        if (fd->is_repeated()) {
          r->AddInt64(msg, fd, static_cast<const arrow::Int64Array&>(array).Value(i));
        } else {
          r->SetInt64(msg, fd, static_cast<const arrow::Int64Array&>(array).Value(i));
        }
        return;
      case arrow::Type::INT32:
        r->SetInt32(msg, fd, static_cast<const arrow::Int32Array&>(array).Value(i));
        return;
      case arrow::Type::DOUBLE:
        r->SetDouble(msg, fd, static_cast<const arrow::DoubleArray&>(array).Value(i));
        return;
      case arrow::Type::BOOL:
        r->SetBool(msg, fd, static_cast<const arrow::BooleanArray&>(array).Value(i));
        return;
      case arrow::Type::STRING:
        r->SetString(msg, fd, std::string(static_cast<const arrow::StringArray&>(array).GetView(i)));
        return;
      case arrow::Type::DICTIONARY: {
        const auto& dict = static_cast<const arrow::DictionaryArray&>(array);
        Set(*dict.dictionary(), dict.GetValueIndex(i), fd, msg);
        return;
      }
      case arrow::Type::STRUCT: {
        const auto& st = static_cast<const arrow::StructArray&>(array);
        Fill(st, i, r->MutableMessage(msg, fd));
        return;
      }
      case arrow::Type::LIST:
      case arrow::Type::MAP: {
        const auto& list = static_cast<const arrow::ListArray&>(array);
        const auto& entries = static_cast<const arrow::StructArray&>(*list.values());
        for (int64_t e = list.value_offset(i); e < list.value_offset(i + 1); ++e) {
          Fill(entries, e, r->AddMessage(msg, fd));
        }
        return;
      }
      default:
        std::abort();
    }
  }

  static void Fill(const arrow::StructArray& st, int64_t i, pb::Message* msg) {
    const pb::Descriptor* d = msg->GetDescriptor();
    for (int c = 0; c < st.num_fields(); ++c) {
      Set(*st.field(c), i, d->field(c), msg);
    }
  }

  static void FillRow(const arrow::RecordBatch& batch, int64_t row, pb::Message* msg) {
    const pb::Descriptor* d = msg->GetDescriptor();
    for (int c = 0; c < batch.num_columns(); ++c) Set(*batch.column(c), row, d->field(c), msg);
  }
};

struct Case {
  std::string name;
  std::shared_ptr<arrow::RecordBatch> batch;
  std::unique_ptr<RecordBatchEncoder> encoder;
  pb::DescriptorPool pool;
  std::unique_ptr<pb::DynamicMessageFactory> factory;
  const pb::Message* prototype = nullptr;
};

std::unique_ptr<Case> MakeCase(const std::string& name, std::shared_ptr<arrow::RecordBatch> batch) {
  auto c = std::make_unique<Case>();
  c->name = name;
  c->batch = std::move(batch);
  c->encoder = RecordBatchEncoder::Make(c->batch->schema()).ValueOrDie();
  pb::FileDescriptorProto file;
  file.set_name(name + ".proto");
  file.set_syntax("proto2");
  *file.add_message_type() = c->encoder->descriptor();
  const pb::FileDescriptor* built = c->pool.BuildFile(file);
  if (built == nullptr) std::abort();
  c->factory = std::make_unique<pb::DynamicMessageFactory>(&c->pool);
  c->prototype = c->factory->GetPrototype(built->message_type(0));
  // Sanity: the baseline and the encoder produce the same rows (iot has no map reordering).
  if (name == "iot") {
    auto out = c->encoder->Encode(*c->batch).ValueOrDie();
    std::unique_ptr<pb::Message> m(c->prototype->New());
    for (int64_t row = 0; row < 100; ++row) {
      m->Clear();
      ReflectionFiller::FillRow(*c->batch, row, m.get());
      if (m->SerializeAsString() != out.record(row)) {
        std::fprintf(stderr, "baseline and encoder differ at row %lld\n", static_cast<long long>(row));
        std::abort();
      }
    }
  }
  return c;
}

void BM_Encode(benchmark::State& state, Case* c) {
  int64_t bytes = 0;
  for (auto _ : state) {
    auto out = c->encoder->Encode(*c->batch);
    if (!out.ok() || !out->failed_rows.empty()) {
      state.SkipWithError("encode failed");
      break;
    }
    bytes += out->buffer->size();
    benchmark::DoNotOptimize(out->buffer->data());
  }
  state.SetItemsProcessed(state.iterations() * c->batch->num_rows());
  state.SetBytesProcessed(bytes);
}

void BM_DynamicMessage(benchmark::State& state, Case* c) {
  std::unique_ptr<pb::Message> msg(c->prototype->New());
  std::string out;
  int64_t bytes = 0;
  const int64_t rows = c->batch->num_rows();
  for (auto _ : state) {
    for (int64_t row = 0; row < rows; ++row) {
      msg->Clear();
      ReflectionFiller::FillRow(*c->batch, row, msg.get());
      out.clear();
      msg->SerializeToString(&out);
      bytes += static_cast<int64_t>(out.size()) + 2;  // + framing, as the encoder's output
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * rows);
  state.SetBytesProcessed(bytes);
}

// Keeps each benchmark's rates for the JSON summary: the median over the repetitions (the
// machine is shared and noisy), or the single run without repetitions.
class Collector : public benchmark::ConsoleReporter {
 public:
  Collector() : benchmark::ConsoleReporter(OO_Tabular) {}
  struct Rates {
    double rows_per_s = 0;
    double bytes_per_s = 0;
  };
  std::map<std::string, Rates> rates;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      if (!median && rates.count(run.run_name.function_name)) continue;
      Rates r;
      auto items = run.counters.find("items_per_second");
      auto bytes = run.counters.find("bytes_per_second");
      if (items != run.counters.end()) r.rows_per_s = items->second.value;
      if (bytes != run.counters.end()) r.bytes_per_s = bytes->second.value;
      rates[run.run_name.function_name] = r;  // without the "/min_time:..." suffix
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::unique_ptr<Case>> cases;
  cases.push_back(MakeCase("iot", IotBatch()));
  cases.push_back(MakeCase("nested", NestedBatch()));
  for (auto& c : cases) {
    benchmark::RegisterBenchmark(("encode_" + c->name).c_str(), BM_Encode, c.get())
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5)
        ->Repetitions(5);
    benchmark::RegisterBenchmark(("dynamic_message_" + c->name).c_str(), BM_DynamicMessage, c.get())
        ->Unit(benchmark::kMillisecond)
        ->MinTime(0.5)
        ->Repetitions(3);
  }
  benchmark::Initialize(&argc, argv);
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::Shutdown();
  for (auto& c : cases) {
    const auto ours = collector.rates["encode_" + c->name];
    const auto base = collector.rates["dynamic_message_" + c->name];
    if (ours.rows_per_s == 0) continue;  // filtered out
    const double ratio = base.rows_per_s > 0 ? ours.rows_per_s / base.rows_per_s : 0;
    std::printf(
        "{\"name\":\"encode_%s\",\"rows_per_s\":%.0f,\"mb_per_s\":%.1f,"
        "\"ratio_vs_dynamic_message\":%.2f,\"baseline_rows_per_s\":%.0f,\"rows_per_batch\":%lld}\n",
        c->name.c_str(), ours.rows_per_s, ours.bytes_per_s / 1e6, ratio, base.rows_per_s,
        static_cast<long long>(c->batch->num_rows()));
  }
  return 0;
}
