// Encoder throughput on the reference schemas `iot` and `nested` (64k-row batches), against
// baselines run in the same process on the same batch, each writing the same framed bytes:
//   - generated (iot only): the protoc-generated class of iot_row.proto, filled with its typed
//     setters and serialized in place (the fastest libprotobuf path);
//   - dynamic_message: a libprotobuf DynamicMessage filled through reflection, with every
//     per-column lookup (descriptors, reflection, typed pointers) done once per batch.
//
// Rates are per CPU second of the (single) benchmark thread. The encoder and its baselines run
// interleaved, round by round (AZ_ENCODE_ROUNDS, default 5); rates are medians over the rounds,
// ratios the medians of the per-round ratios. Ends with one JSON line per schema:
//   {"name":"encode_iot","rows_per_s":..,"mb_per_s":..,"ratio_vs_generated":..,
//    "generated_rows_per_s":..,"ratio_vs_dynamic_message":..,"dynamic_message_rows_per_s":..}
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <arrow/api.h>
#include <benchmark/benchmark.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>

#include "arrow_zerobus/encode.h"
#include "iot_row.pb.h"

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
// Baselines. Both write what the encoder writes: one buffer per batch of framed records
// (0x0A, varint length, message), each message built in one reused object, sized once
// (ByteSizeLong caches the sizes) and serialized into the buffer in place; the buffer is kept
// across batches, so after the first batch neither baseline allocates for its output.

// Grow-only output of framed records.
class FramedOutput {
 public:
  void Clear() { size_ = 0; }
  template <class Message>
  void Append(const Message& msg) {
    const size_t len = msg.ByteSizeLong();
    Reserve(size_ + 1 + 5 + len);
    uint8_t* p = data_.get() + size_;
    *p++ = 0x0A;
    p = pb::io::CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(len), p);
    p = msg.SerializeWithCachedSizesToArray(p);
    size_ = static_cast<size_t>(p - data_.get());
  }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_.get()), size_}; }
  size_t size() const { return size_; }

 private:
  void Reserve(size_t n) {
    if (n <= capacity_) return;
    const size_t cap = std::max(n, capacity_ * 2);
    std::unique_ptr<uint8_t[]> grown(new uint8_t[cap]);
    if (size_ > 0) std::memcpy(grown.get(), data_.get(), size_);
    data_ = std::move(grown);
    capacity_ = cap;
  }
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0, capacity_ = 0;
};

// (a) A libprotobuf DynamicMessage filled through reflection. Everything a cell needs that does
// not depend on the row (field descriptor, reflection object, typed value pointers, child plans)
// is looked up once per batch, so the loop pays only for reflection itself.
struct FieldPlan {
  arrow::Type::type kind;
  std::shared_ptr<arrow::Array> array;  // keeps child arrays (struct fields) alive
  const pb::FieldDescriptor* fd;
  const pb::Reflection* reflection;  // of the message that holds fd
  const void* values = nullptr;      // fixed-width: the values; dictionary: the int32 indices
  const int32_t* list_offsets = nullptr;
  std::vector<FieldPlan> children;  // dictionary: its values; struct, list, map: entry fields
};

class ReflectionFiller {
 public:
  ReflectionFiller(const arrow::RecordBatch& batch, const pb::Message& prototype,
                   pb::MessageFactory* factory)
      : factory_(factory) {
    const pb::Descriptor* d = prototype.GetDescriptor();
    for (int c = 0; c < batch.num_columns(); ++c) {
      columns_.push_back(Plan(batch.column(c), d->field(c), prototype.GetReflection()));
    }
  }

  void FillRow(int64_t row, pb::Message* msg) const { Fill(columns_, row, msg); }

 private:
  FieldPlan Plan(std::shared_ptr<arrow::Array> array, const pb::FieldDescriptor* fd,
                 const pb::Reflection* reflection) {
    FieldPlan p{array->type_id(), array, fd, reflection, nullptr, nullptr, {}};
    switch (p.kind) {
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP:
        p.values = array->data()->GetValues<int64_t>(1);
        break;
      case arrow::Type::INT32:
        p.values = array->data()->GetValues<int32_t>(1);
        break;
      case arrow::Type::DOUBLE:
        p.values = array->data()->GetValues<double>(1);
        break;
      case arrow::Type::BOOL:
      case arrow::Type::STRING:
        break;
      case arrow::Type::DICTIONARY: {
        const auto& dict = static_cast<const arrow::DictionaryArray&>(*array);
        if (dict.indices()->type_id() != arrow::Type::INT32) std::abort();
        p.values = dict.indices()->data()->GetValues<int32_t>(1);
        p.children.push_back(Plan(dict.dictionary(), fd, reflection));
        break;
      }
      case arrow::Type::STRUCT:
        PlanFields(static_cast<const arrow::StructArray&>(*array), fd, &p.children);
        break;
      case arrow::Type::LIST:
      case arrow::Type::MAP: {
        const auto& list = static_cast<const arrow::ListArray&>(*array);
        p.list_offsets = list.raw_value_offsets();
        PlanFields(static_cast<const arrow::StructArray&>(*list.values()), fd, &p.children);
        break;
      }
      default:
        std::abort();
    }
    return p;
  }

  // The fields of `st` bound to the fields of fd's message type.
  void PlanFields(const arrow::StructArray& st, const pb::FieldDescriptor* fd,
                  std::vector<FieldPlan>* out) {
    const pb::Descriptor* d = fd->message_type();
    const pb::Reflection* r = factory_->GetPrototype(d)->GetReflection();
    for (int c = 0; c < st.num_fields(); ++c) out->push_back(Plan(st.field(c), d->field(c), r));
  }

  static void Fill(const std::vector<FieldPlan>& fields, int64_t i, pb::Message* msg) {
    for (const auto& f : fields) Set(f, i, msg);
  }

  static void Set(const FieldPlan& p, int64_t i, pb::Message* msg) {
    if (p.array->IsNull(i)) return;
    const pb::Reflection* r = p.reflection;
    switch (p.kind) {
      case arrow::Type::INT64:
      case arrow::Type::TIMESTAMP:
        r->SetInt64(msg, p.fd, static_cast<const int64_t*>(p.values)[i]);
        return;
      case arrow::Type::INT32:
        r->SetInt32(msg, p.fd, static_cast<const int32_t*>(p.values)[i]);
        return;
      case arrow::Type::DOUBLE:
        r->SetDouble(msg, p.fd, static_cast<const double*>(p.values)[i]);
        return;
      case arrow::Type::BOOL:
        r->SetBool(msg, p.fd, static_cast<const arrow::BooleanArray&>(*p.array).Value(i));
        return;
      case arrow::Type::STRING:
        r->SetString(msg, p.fd, std::string(static_cast<const arrow::StringArray&>(*p.array).GetView(i)));
        return;
      case arrow::Type::DICTIONARY:
        Set(p.children[0], static_cast<const int32_t*>(p.values)[i], msg);
        return;
      case arrow::Type::STRUCT:
        Fill(p.children, i, r->MutableMessage(msg, p.fd));
        return;
      case arrow::Type::LIST:
      case arrow::Type::MAP:
        for (int64_t e = p.list_offsets[i]; e < p.list_offsets[i + 1]; ++e) {
          Fill(p.children, e, r->AddMessage(msg, p.fd));
        }
        return;
      default:
        std::abort();
    }
  }

  pb::MessageFactory* factory_;
  std::vector<FieldPlan> columns_;
};

// (b) The protoc-generated class of the iot row (iot_row.proto): typed setters, no reflection.
class GeneratedIotFiller {
 public:
  explicit GeneratedIotFiller(const arrow::RecordBatch& b)
      : id_(b.column(0)->data()->GetValues<int64_t>(1)),
        ts_(b.column(1)->data()->GetValues<int64_t>(1)),
        device_(static_cast<const arrow::StringArray&>(*b.column(2))),
        site_(static_cast<const arrow::DictionaryArray&>(*b.column(3))),
        site_index_(site_.indices()->data()->GetValues<int32_t>(1)),
        site_values_(static_cast<const arrow::StringArray&>(*site_.dictionary())),
        temperature_(static_cast<const arrow::DoubleArray&>(*b.column(4))),
        humidity_(static_cast<const arrow::DoubleArray&>(*b.column(5))),
        pressure_(static_cast<const arrow::DoubleArray&>(*b.column(6))),
        voltage_(static_cast<const arrow::DoubleArray&>(*b.column(7))),
        status_(static_cast<const arrow::Int32Array&>(*b.column(8))),
        alarm_(static_cast<const arrow::BooleanArray&>(*b.column(9))) {}

  void FillRow(int64_t i, arrow_zerobus::bench::IotRow* m) const {
    m->set_id(id_[i]);
    m->set_ts(ts_[i]);
    if (device_.IsValid(i)) {
      const std::string_view v = device_.GetView(i);
      m->set_device_id(v.data(), v.size());
    }
    if (site_.IsValid(i)) {
      const std::string_view v = site_values_.GetView(site_index_[i]);
      m->set_site(v.data(), v.size());
    }
    if (temperature_.IsValid(i)) m->set_temperature(temperature_.Value(i));
    if (humidity_.IsValid(i)) m->set_humidity(humidity_.Value(i));
    if (pressure_.IsValid(i)) m->set_pressure(pressure_.Value(i));
    if (voltage_.IsValid(i)) m->set_voltage(voltage_.Value(i));
    if (status_.IsValid(i)) m->set_status(status_.Value(i));
    if (alarm_.IsValid(i)) m->set_alarm(alarm_.Value(i));
  }

 private:
  const int64_t* id_;
  const int64_t* ts_;
  const arrow::StringArray& device_;
  const arrow::DictionaryArray& site_;
  const int32_t* site_index_;
  const arrow::StringArray& site_values_;
  const arrow::DoubleArray &temperature_, &humidity_, &pressure_, &voltage_;
  const arrow::Int32Array& status_;
  const arrow::BooleanArray& alarm_;
};

struct Case {
  std::string name;
  std::shared_ptr<arrow::RecordBatch> batch;
  std::unique_ptr<RecordBatchEncoder> encoder;
  pb::DescriptorPool pool;
  std::unique_ptr<pb::DynamicMessageFactory> factory;
  const pb::Message* prototype = nullptr;
  bool generated = false;  // has a generated-class baseline (iot)
};

// One batch through a baseline: per row, the reused message cleared, filled and appended.
template <class Filler, class Message>
void BaselineBatch(const Filler& filler, int64_t rows, Message* msg, FramedOutput* out) {
  out->Clear();
  for (int64_t row = 0; row < rows; ++row) {
    msg->Clear();
    filler.FillRow(row, msg);
    out->Append(*msg);
  }
}

void DynamicMessageBatch(const Case& c, pb::Message* msg, FramedOutput* out) {
  BaselineBatch(ReflectionFiller(*c.batch, *c.prototype, c.factory.get()), c.batch->num_rows(),
                msg, out);
}

void GeneratedBatch(const Case& c, arrow_zerobus::bench::IotRow* msg, FramedOutput* out) {
  BaselineBatch(GeneratedIotFiller(*c.batch), c.batch->num_rows(), msg, out);
}

std::unique_ptr<Case> MakeCase(const std::string& name, std::shared_ptr<arrow::RecordBatch> batch,
                               bool generated) {
  auto c = std::make_unique<Case>();
  c->name = name;
  c->batch = std::move(batch);
  c->generated = generated;
  c->encoder = RecordBatchEncoder::Make(c->batch->schema()).ValueOrDie();
  pb::FileDescriptorProto file;
  file.set_name(name + ".proto");
  file.set_syntax("proto2");
  *file.add_message_type() = c->encoder->descriptor();
  const pb::FileDescriptor* built = c->pool.BuildFile(file);
  if (built == nullptr) std::abort();
  c->factory = std::make_unique<pb::DynamicMessageFactory>(&c->pool);
  c->prototype = c->factory->GetPrototype(built->message_type(0));
  // Sanity: the baselines write exactly the encoder's bytes for the whole batch (iot has no map,
  // whose entries protobuf may order differently).
  if (name == "iot") {
    const auto encoded = c->encoder->Encode(*c->batch).ValueOrDie();
    const std::string_view expected = encoded.framed({0, encoded.num_records()});
    FramedOutput out;
    std::unique_ptr<pb::Message> m(c->prototype->New());
    DynamicMessageBatch(*c, m.get(), &out);
    if (out.view() != expected) {
      std::fprintf(stderr, "DynamicMessage baseline and encoder differ\n");
      std::abort();
    }
    arrow_zerobus::bench::IotRow row;
    GeneratedBatch(*c, &row, &out);
    if (out.view() != expected) {
      std::fprintf(stderr, "generated-class baseline and encoder differ\n");
      std::abort();
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
  FramedOutput out;
  int64_t bytes = 0;
  for (auto _ : state) {
    DynamicMessageBatch(*c, msg.get(), &out);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.view().data());
  }
  state.SetItemsProcessed(state.iterations() * c->batch->num_rows());
  state.SetBytesProcessed(bytes);
}

void BM_Generated(benchmark::State& state, Case* c) {
  arrow_zerobus::bench::IotRow msg;
  FramedOutput out;
  int64_t bytes = 0;
  for (auto _ : state) {
    GeneratedBatch(*c, &msg, &out);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.view().data());
  }
  state.SetItemsProcessed(state.iterations() * c->batch->num_rows());
  state.SetBytesProcessed(bytes);
}

// Keeps every run's rates for the JSON summary, by registered name ("encode_iot/round:2").
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
      if (run.error_occurred || run.run_type == Run::RT_Aggregate) continue;
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

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string RoundName(const std::string& kind, const Case& c, int round) {
  return kind + "_" + c.name + "/round:" + std::to_string(round);
}

}  // namespace

int main(int argc, char** argv) {
  const char* rounds_env = std::getenv("AZ_ENCODE_ROUNDS");
  const int rounds = rounds_env && *rounds_env ? std::max(1, std::atoi(rounds_env)) : 5;
  std::vector<std::unique_ptr<Case>> cases;
  cases.push_back(MakeCase("iot", IotBatch(), true));
  cases.push_back(MakeCase("nested", NestedBatch(), false));
  // Round by round, every case and its baselines one after the other, so a change in the
  // machine's load hits all of them alike; the ratios are medians of the per-round ratios.
  for (int round = 1; round <= rounds; ++round) {
    for (auto& c : cases) {
      auto add = [&](const std::string& kind, void (*fn)(benchmark::State&, Case*)) {
        benchmark::RegisterBenchmark(RoundName(kind, *c, round).c_str(), fn, c.get())
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.5);
      };
      add("encode", BM_Encode);
      if (c->generated) add("generated", BM_Generated);
      add("dynamic_message", BM_DynamicMessage);
    }
  }
  benchmark::Initialize(&argc, argv);
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::Shutdown();
  for (auto& c : cases) {
    std::vector<double> ours, ours_bytes, generated, dynamic, vs_generated, vs_dynamic;
    for (int round = 1; round <= rounds; ++round) {
      auto rates_of = [&](const std::string& kind) {
        auto it = collector.rates.find(RoundName(kind, *c, round));
        return it == collector.rates.end() ? Collector::Rates{} : it->second;
      };
      const auto e = rates_of("encode"), g = rates_of("generated"), d = rates_of("dynamic_message");
      if (e.rows_per_s == 0) continue;  // filtered out
      ours.push_back(e.rows_per_s);
      ours_bytes.push_back(e.bytes_per_s);
      if (g.rows_per_s > 0) {
        generated.push_back(g.rows_per_s);
        vs_generated.push_back(e.rows_per_s / g.rows_per_s);
      }
      if (d.rows_per_s > 0) {
        dynamic.push_back(d.rows_per_s);
        vs_dynamic.push_back(e.rows_per_s / d.rows_per_s);
      }
    }
    if (ours.empty()) continue;
    std::printf("{\"name\":\"encode_%s\",\"rows_per_s\":%.0f,\"mb_per_s\":%.1f", c->name.c_str(),
                Median(ours), Median(ours_bytes) / 1e6);
    if (c->generated) {
      std::printf(",\"ratio_vs_generated\":%.2f,\"generated_rows_per_s\":%.0f",
                  Median(vs_generated), Median(generated));
    }
    std::printf(",\"ratio_vs_dynamic_message\":%.2f,\"dynamic_message_rows_per_s\":%.0f,"
                "\"rounds\":%zu,\"rows_per_batch\":%lld}\n",
                Median(vs_dynamic), Median(dynamic), ours.size(),
                static_cast<long long>(c->batch->num_rows()));
  }
  return 0;
}
