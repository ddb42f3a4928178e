// e2e_flight_iot: the same `iot` rows, already in memory as Arrow record batches, into the
// in-process emulator (null sink, loopback, OAuth) through four clients, until every row is
// acknowledged as durable:
//   - ours, Flight: ZerobusStream with RecordType::kArrow, one IngestArrowBatch per batch;
//   - ours, protobuf: RecordBatchEncoder::Encode + IngestEncodedBatch per batch (encoding
//     timed: the input is Arrow, as for the Flight clients);
//   - the vendor Python SDK's Arrow stream (create_arrow_stream, ingest_batch per batch);
//   - the vendor Python SDK's record stream (ingest_records_offset per batch of rows that our
//     encoder encoded beforehand: its SDK has no Arrow input, so its encoding is NOT timed).
// The batches carry the Arrow types the Flight service expects (strings as large_utf8, no
// dictionaries; zerobus-arrow-flight.md section 4); every client gets exactly these rows.
//
// Interleaved: every round runs each client with 1 stream, then each with 2 streams (the order
// of the clients rotates by round), so all see the same machine load. With N streams the
// batches are dealt round robin and each stream is fed and flushed by its own thread (ours and
// the vendor's alike). Rates are wall-clock, first ingest to last flush; rows per CPU second
// (whole process: client + emulator for ours, the SDK's process + the emulator for the
// vendor's) are printed as a load-robust check. Ratios compare equal stream counts and are the
// medians of the per-round ratios.
//
// Options (environment): AZ_FLIGHT_BATCHES (32 batches of 65536 rows), AZ_FLIGHT_ROUNDS (3),
// AZ_PYTHON (python3), AZ_E2E_NO_VENDOR=1 (ours only).
//
// Ends with {"name":"e2e_flight_iot","rows":..,"streams":S,"rows_per_s":.. (ours, Flight),
//   "vendor_arrow_rows_per_s":..,"ratio_vs_vendor_arrow":..,"protobuf_path_rows_per_s":..,
//   "ratio_vs_protobuf_path":..,"vendor_record_rows_per_s":..,"ratio_vs_vendor_record":..,
//   rows per CPU second of each client and the ratios of those (cpu_ratio_vs_...)}
// at S streams each (S = the count at which our Flight stream is faster), and the same keys with
// the suffixes _1_stream and _2_streams.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arrow/api.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/encode.h"
#include "arrow_zerobus/stream.h"
#include "e2e/e2e_common.h"
#include "server/emulator.h"

namespace {

namespace az = arrow_zerobus;
namespace fs = std::filesystem;
using namespace arrow_zerobus::bench;  // NOLINT: the shared e2e helpers
using Clock = std::chrono::steady_clock;
using Batches = std::vector<std::shared_ptr<arrow::RecordBatch>>;

enum Client { kFlight, kProtobuf, kVendorArrow, kVendorRecord, kClients };
const char* const kClientLabel[kClients] = {"ours, Flight", "ours, protobuf",
                                            "vendor, Arrow stream", "vendor, record stream"};
// One table per client, so no client's stream meets another's schema.
const char* const kClientTable[kClients] = {"main.bench.iot_flight", "main.bench.iot_proto",
                                            "main.bench.iot_vendor_arrow",
                                            "main.bench.iot_vendor_records"};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "bench_e2e_flight: %s\n", what.c_str());
  std::exit(1);
}

// A string column as large_utf8 (a dictionary column decoded to its values).
std::shared_ptr<arrow::Array> LargeStrings(const arrow::Array& column) {
  arrow::LargeStringBuilder out;
  const bool dict = column.type_id() == arrow::Type::DICTIONARY;
  const auto& values = static_cast<const arrow::StringArray&>(
      dict ? *static_cast<const arrow::DictionaryArray&>(column).dictionary() : column);
  for (int64_t i = 0; i < column.length(); ++i) {
    if (column.IsNull(i)) {
      (void)out.AppendNull();
      continue;
    }
    const int64_t at = dict ? static_cast<const arrow::DictionaryArray&>(column).GetValueIndex(i) : i;
    (void)out.Append(values.GetView(at));
  }
  return out.Finish().ValueOrDie();
}

// The iot batch in the Flight service's types: every string column as large_utf8.
std::shared_ptr<arrow::RecordBatch> FlightTyped(const arrow::RecordBatch& b) {
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (int c = 0; c < b.num_columns(); ++c) {
    const auto& f = b.schema()->field(c);
    const auto id = f->type()->id();
    if (id == arrow::Type::STRING || id == arrow::Type::DICTIONARY) {
      fields.push_back(f->WithType(arrow::large_utf8()));
      columns.push_back(LargeStrings(*b.column(c)));
    } else {
      fields.push_back(f);
      columns.push_back(b.column(c));
    }
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), b.num_rows(), columns);
}

struct RunResult {
  double rows_per_s = 0;
  double rows_per_cpu_s = 0;
};

// Our client: `streams` streams opened with `so` (table and headers set here), each fed its
// share of `batches` (round robin) by its own thread through `feed`, then flushed; every
// request's ack is checked.
using Feed = std::function<std::vector<arrow::Future<az::IngestAck>>(
    az::ZerobusStream&, const std::shared_ptr<arrow::RecordBatch>&)>;

RunResult RunOurs(const az::emulator::Emulator& emu, az::StreamOptions so, const char* table,
                  const Batches& batches, int64_t rows, int streams, const Feed& feed) {
  so.endpoint = emu.grpc_endpoint();
  so.table_name = table;
  so.headers_provider = BenchHeaders(emu, table);
  so.application_name = "bench_e2e_flight";
  std::vector<std::unique_ptr<az::ZerobusStream>> ss;
  for (int i = 0; i < streams; ++i) {
    auto s = az::ZerobusStream::Open(so);
    if (!s.ok()) Die(std::string("open failed (") + table + "): " + s.status().ToString());
    ss.push_back(std::move(*s));
  }
  std::vector<std::vector<arrow::Future<az::IngestAck>>> acks(streams);
  std::vector<arrow::Status> flushed(streams);
  const double cpu0 = ProcessCpuSeconds();
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      for (size_t b = static_cast<size_t>(i); b < batches.size(); b += static_cast<size_t>(streams)) {
        for (auto& f : feed(*ss[i], batches[b])) acks[i].push_back(std::move(f));
      }
      flushed[i] = ss[i]->Flush();
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = ProcessCpuSeconds() - cpu0;
  for (int i = 0; i < streams; ++i) {
    if (!flushed[i].ok()) Die(std::string("flush failed: ") + flushed[i].ToString());
    for (auto& f : acks[i]) {
      if (!f.status().ok()) Die(std::string("request failed: ") + f.status().ToString());
    }
    (void)ss[i]->Close();
  }
  return {static_cast<double>(rows) / secs, static_cast<double>(rows) / cpu};
}

RunResult RunVendorClient(const az::emulator::Emulator& emu, const char* table,
                          const std::string& args, int streams, int64_t rows) {
  const double cpu0 = ProcessCpuSeconds();  // the emulator's (our clients are idle)
  auto v = RunVendor(emu, table, args, streams);
  const double emulator_cpu = ProcessCpuSeconds() - cpu0;
  if (!v) Die(std::string("vendor SDK run failed (") + table + ")");
  if ((*v)["rows"].get<int64_t>() != rows) Die("the vendor SDK sent a different number of rows");
  return {(*v)["rows_per_s"].get<double>(),
          static_cast<double>(rows) / ((*v)["cpu_seconds"].get<double>() + emulator_cpu)};
}

// Per client and stream count, one entry per round.
struct Series {
  std::vector<double> rows_per_s, rows_per_cpu_s;
};

}  // namespace

int main() {
  const int64_t num_batches = EnvInt("AZ_FLIGHT_BATCHES", 32);
  const int rounds = static_cast<int>(EnvInt("AZ_FLIGHT_ROUNDS", 3));
  const bool vendor = EnvInt("AZ_E2E_NO_VENDOR", 0) == 0;
  const int stream_counts[2] = {1, 2};

  Batches batches;
  for (int64_t b = 0; b < num_batches; ++b) {
    batches.push_back(FlightTyped(*IotBatch(b * kBatchRows, 1234 + static_cast<uint64_t>(b))));
  }
  const auto schema = batches[0]->schema();
  // The vendor record stream's input: the same rows, encoded by our encoder (not timed).
  const Workload encoded = EncodeWorkload(batches);
  const int64_t rows = encoded.rows;
  const auto encoder = az::RecordBatchEncoder::Make(schema).ValueOrDie();
  std::string fields;
  for (const auto& f : schema->fields()) fields += (fields.empty() ? "" : ", ") + f->ToString();
  std::printf("workload: %lld batches x %lld rows = %lld rows; schema %s\n",
              static_cast<long long>(num_batches), static_cast<long long>(kBatchRows),
              static_cast<long long>(rows), fields.c_str());

  fs::path dir = fs::temp_directory_path() / ("az_bench_e2e_flight_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string vendor_args[kClients];
  if (vendor) {
    vendor_args[kVendorArrow] = "--arrow " + WriteArrowFile(batches, dir.string());
    vendor_args[kVendorRecord] = "--rows " + WriteRowsFile(encoded, dir.string()) +
                                 " --descriptor " + WriteDescriptorFile(encoded, dir.string());
  }
  // Every client's table declared with the rows' schema (the emulator stores strings as utf8).
  std::vector<az::emulator::TableDeclaration> tables;
  for (const char* t : kClientTable) tables.push_back({t, schema});
  auto emu_owner = StartNullSinkEmulator((dir / "data").string(), tables);
  const az::emulator::Emulator& emu = *emu_owner;

  az::StreamOptions flight = az::StreamOptions::Defaults();
  flight.record_type = az::RecordType::kArrow;
  flight.arrow_schema = schema;
  const Feed feed_flight = [](az::ZerobusStream& s, const std::shared_ptr<arrow::RecordBatch>& b) {
    std::vector<arrow::Future<az::IngestAck>> out;
    for (auto& piece : s.IngestArrowBatch(b)) out.push_back(std::move(piece.ack));
    return out;
  };
  az::StreamOptions proto = az::StreamOptions::Defaults();
  proto.descriptor = encoder->descriptor();
  const Feed feed_proto = [&](az::ZerobusStream& s, const std::shared_ptr<arrow::RecordBatch>& b) {
    auto enc = encoder->Encode(*b);
    if (!enc.ok() || !enc->failed_rows.empty()) Die("encoding failed");
    return s.IngestEncodedBatch(*enc);
  };
  auto run_unchecked = [&](Client c, int streams) -> RunResult {
    switch (c) {
      case kFlight:
        return RunOurs(emu, flight, kClientTable[c], batches, rows, streams, feed_flight);
      case kProtobuf:
        return RunOurs(emu, proto, kClientTable[c], batches, rows, streams, feed_proto);
      default:
        return RunVendorClient(emu, kClientTable[c], vendor_args[c], streams, rows);
    }
  };
  auto run = [&](Client c, int streams) {
    const int64_t before = RowsTaken(emu, kClientTable[c]);
    const RunResult r = run_unchecked(c, streams);
    const int64_t taken = RowsTaken(emu, kClientTable[c]) - before;
    if (taken < rows) {
      Die(std::string(kClientLabel[c]) + ": the emulator took " + std::to_string(taken) +
          " rows of " + std::to_string(rows));
    }
    return r;
  };

  // Warm-up (connections, allocator, tables created).
  (void)run(kFlight, 1);
  (void)run(kProtobuf, 1);

  const int clients = vendor ? kClients : kVendorArrow;
  Series series[kClients][2];
  // Flight / client c, per round: rows/s and rows per CPU second.
  std::vector<double> ratio[kClients][2], cpu_ratio[kClients][2];
  for (int round = 0; round < rounds; ++round) {
    std::printf("round %d\n", round + 1);
    for (int si = 0; si < 2; ++si) {
      double rps[kClients] = {}, per_cpu[kClients] = {};
      for (int k = 0; k < clients; ++k) {
        const Client c = static_cast<Client>((k + round) % clients);
        const RunResult r = run(c, stream_counts[si]);
        rps[c] = r.rows_per_s;
        per_cpu[c] = r.rows_per_cpu_s;
        series[c][si].rows_per_s.push_back(r.rows_per_s);
        series[c][si].rows_per_cpu_s.push_back(r.rows_per_cpu_s);
        std::printf("  %d stream%s  %-22s %10.0f rows/s  %10.0f rows/cpu-s\n", stream_counts[si],
                    si == 0 ? " " : "s", kClientLabel[c], r.rows_per_s, r.rows_per_cpu_s);
      }
      for (int c = 1; c < clients; ++c) {
        ratio[c][si].push_back(rps[kFlight] / rps[c]);
        cpu_ratio[c][si].push_back(per_cpu[kFlight] / per_cpu[c]);
      }
    }
  }
  (void)emu_owner->Shutdown();
  std::error_code ec;
  fs::remove_all(dir, ec);

  auto round2 = [](double x) { return std::round(x * 100) / 100; };
  const char* const key[kClients] = {"", "protobuf_path", "vendor_arrow", "vendor_record"};
  const int best = Median(series[kFlight][1].rows_per_s) > Median(series[kFlight][0].rows_per_s);
  nlohmann::ordered_json out = {{"name", "e2e_flight_iot"},
                        {"rows", rows},
                        {"rounds", rounds},
                        {"streams", stream_counts[best]}};
  auto add = [&](int si, const std::string& sfx) {
    out["rows_per_s" + sfx] = std::round(Median(series[kFlight][si].rows_per_s));
    out["rows_per_cpu_s" + sfx] = std::round(Median(series[kFlight][si].rows_per_cpu_s));
    for (int c = 1; c < clients; ++c) {
      const std::string k = key[c];
      out[k + "_rows_per_s" + sfx] = std::round(Median(series[c][si].rows_per_s));
      out[k + "_rows_per_cpu_s" + sfx] = std::round(Median(series[c][si].rows_per_cpu_s));
      out["ratio_vs_" + k + sfx] = round2(Median(ratio[c][si]));
      out["cpu_ratio_vs_" + k + sfx] = round2(Median(cpu_ratio[c][si]));
    }
  };
  add(best, "");
  add(0, "_1_stream");
  add(1, "_2_streams");
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
