// See e2e_common.h.
#include "e2e/e2e_common.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <google/protobuf/descriptor.pb.h>

namespace arrow_zerobus::bench {

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

std::shared_ptr<arrow::Schema> IotSchema() {
  return arrow::schema({arrow::field("id", arrow::int64(), false),
                        arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), false),
                        arrow::field("device_id", arrow::utf8()),
                        arrow::field("site", arrow::dictionary(arrow::int32(), arrow::utf8())),
                        arrow::field("temperature", arrow::float64()),
                        arrow::field("humidity", arrow::float64()),
                        arrow::field("pressure", arrow::float64()),
                        arrow::field("voltage", arrow::float64()),
                        arrow::field("status", arrow::int32()),
                        arrow::field("alarm", arrow::boolean())});
}

std::shared_ptr<arrow::RecordBatch> IotBatch(int64_t first_id, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto schema = IotSchema();
  arrow::Int64Builder id;
  arrow::TimestampBuilder ts(schema->field(1)->type(), arrow::default_memory_pool());
  arrow::StringBuilder device;
  arrow::Int32Builder site_idx;
  arrow::DoubleBuilder measures[4];
  arrow::Int32Builder status;
  arrow::BooleanBuilder alarm;
  const double lo[4] = {-25, 0, 940, 2.9}, hi[4] = {48, 100, 1060, 3.7};
  const int64_t t0 = 1'750'000'000'000'000;
  static const char kChars[] = "0123456789abcdef";
  for (int64_t i = 0; i < kBatchRows; ++i) {
    (void)id.Append(first_id + i);
    (void)ts.Append(t0 + (first_id + i) * 250 + static_cast<int64_t>(rng() % 250));
    const int len = 8 + static_cast<int>(rng() % 9);  // 8-16 chars
    char buf[16];
    for (int c = 0; c < len; ++c) buf[c] = kChars[rng() % 16];
    (void)device.Append(buf, len);
    (void)site_idx.Append(static_cast<int32_t>(rng() % 12));
    for (int m = 0; m < 4; ++m) {
      if (rng() % 100 < 5) {
        (void)measures[m].AppendNull();
      } else {
        (void)measures[m].Append(lo[m] + (hi[m] - lo[m]) * static_cast<double>(rng() % 100000) / 1e5);
      }
    }
    (void)status.Append(rng() % 10 == 0 ? static_cast<int32_t>(rng() % 512) : 0);
    (void)alarm.Append(rng() % 40 == 0);
  }
  arrow::StringBuilder sites;
  for (int s = 0; s < 12; ++s) (void)sites.Append("plant-" + std::to_string(100 + s));
  auto site = arrow::DictionaryArray::FromArrays(schema->field(3)->type(),
                                                 site_idx.Finish().ValueOrDie(),
                                                 sites.Finish().ValueOrDie())
                  .ValueOrDie();
  std::vector<std::shared_ptr<arrow::Array>> cols = {
      id.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), device.Finish().ValueOrDie(), site};
  for (auto& m : measures) cols.push_back(m.Finish().ValueOrDie());
  cols.push_back(status.Finish().ValueOrDie());
  cols.push_back(alarm.Finish().ValueOrDie());
  return arrow::RecordBatch::Make(schema, kBatchRows, cols);
}

Workload EncodeWorkload(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  Workload w;
  auto encoder = RecordBatchEncoder::Make(batches.at(0)->schema()).ValueOrDie();
  w.descriptor = encoder->descriptor();
  for (const auto& batch : batches) {
    auto enc = encoder->Encode(*batch).ValueOrDie();
    if (!enc.failed_rows.empty()) {
      std::fprintf(stderr, "unexpected row failures: %s\n", enc.failed_rows[0].message.c_str());
      std::exit(1);
    }
    w.rows += enc.num_records();
    w.bytes += enc.buffer->size();
    w.batches.push_back(std::move(enc));
  }
  return w;
}

std::unique_ptr<emulator::Emulator> StartNullSinkEmulator(
    const std::string& data_dir, std::vector<emulator::TableDeclaration> tables) {
  auto eo = emulator::EmulatorOptions::Defaults();
  eo.data_dir = data_dir;
  eo.sink = emulator::SinkKind::kNull;
  eo.fsync = false;
  eo.principals = {{kClientId, kClientSecret}};
  eo.tables = std::move(tables);
  auto emu = std::make_unique<emulator::Emulator>(eo);
  auto st = emu->Start();
  if (!st.ok()) {
    std::fprintf(stderr, "emulator: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  return emu;
}

std::shared_ptr<HeadersProvider> BenchHeaders(const emulator::Emulator& emu,
                                              const std::string& table) {
  OAuthOptions oo = OAuthOptions::Defaults();
  oo.unity_catalog_url = emu.http_endpoint();
  oo.client_id = kClientId;
  oo.client_secret = SecretString(kClientSecret);
  oo.table_name = table;
  oo.workspace_id = "1234";
  return MakeOAuthHeadersProvider(oo).ValueOrDie();
}

int64_t RowsTaken(const emulator::Emulator& emu, const std::string& table) {
  const nlohmann::json stats = emu.Stats();
  for (const auto& t : stats["tables"]) {
    if (t["name"] == table) return t["rows"].get<int64_t>();
  }
  return 0;
}

std::string WriteRowsFile(const Workload& w, const std::string& dir) {
  const std::string path = dir + "/rows.bin";
  std::ofstream out(path, std::ios::binary);
  for (const auto& e : w.batches) {
    const uint32_t n = static_cast<uint32_t>(e.num_records());
    out.write(reinterpret_cast<const char*>(&n), 4);
    for (int64_t i = 0; i < e.num_records(); ++i) {
      std::string_view r = e.record(i);
      const uint32_t len = static_cast<uint32_t>(r.size());
      out.write(reinterpret_cast<const char*>(&len), 4);
      out.write(r.data(), static_cast<std::streamsize>(r.size()));
    }
  }
  return path;
}

std::string WriteDescriptorFile(const Workload& w, const std::string& dir) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("iot_bench.proto");
  file.set_syntax("proto2");
  *file.add_message_type() = w.descriptor;
  const std::string path = dir + "/descriptor.bin";
  std::ofstream out(path, std::ios::binary);
  out << file.SerializeAsString();
  return path;
}

std::string WriteArrowFile(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                           const std::string& dir) {
  const std::string path = dir + "/batches.arrow";
  auto file = arrow::io::FileOutputStream::Open(path).ValueOrDie();
  auto writer = arrow::ipc::MakeFileWriter(file, batches.at(0)->schema()).ValueOrDie();
  for (const auto& b : batches) {
    if (!writer->WriteRecordBatch(*b).ok()) std::abort();
  }
  if (!writer->Close().ok() || !file->Close().ok()) std::abort();
  return path;
}

std::optional<nlohmann::json> RunVendor(const emulator::Emulator& emu, const std::string& table,
                                        const std::string& args, int streams,
                                        const std::string& endpoint) {
  const char* py = std::getenv("AZ_PYTHON");
  std::string cmd = std::string(py && *py ? py : "python3") + " " + AZ_SOURCE_DIR +
                    "/bench/e2e/vendor_sdk_ingest.py --endpoint " +
                    (endpoint.empty() ? emu.grpc_endpoint() : endpoint) + " --uc-url " +
                    emu.http_endpoint() + " --table " + table + " --client-id " + kClientId +
                    " --streams " + std::to_string(streams) + " " + args;
  // The secret goes through the environment, not the command line.
  setenv("AZ_VENDOR_CLIENT_SECRET", kClientSecret, 1);
  setenv("RUST_LOG", "warn", 0);  // the SDK logs every stream open at info
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) {
    std::fprintf(stderr, "vendor SDK run failed (exit %d): %s\n", rc, out.c_str());
    return std::nullopt;
  }
  auto pos = out.rfind("{\"vendor\"");
  if (pos == std::string::npos) return std::nullopt;
  auto j = nlohmann::json::parse(out.substr(pos, out.find('\n', pos) - pos), nullptr, false);
  if (j.is_discarded() || !j["vendor"].contains("rows_per_s")) return std::nullopt;
  return j["vendor"];
}

}  // namespace arrow_zerobus::bench
