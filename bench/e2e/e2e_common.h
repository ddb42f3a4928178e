// What the end-to-end benchmarks (bench_e2e, bench_e2e_flight) share: the `iot` rows, the
// in-process emulator with the null sink, OAuth for our streams, the vendor Python SDK runs
// (bench/e2e/vendor_sdk_ingest.py) and the statistics.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/type_fwd.h>
#include <nlohmann/json.hpp>

#include "arrow_zerobus/auth.h"
#include "arrow_zerobus/encode.h"
#include "server/emulator.h"

namespace arrow_zerobus::bench {

constexpr int64_t kBatchRows = 64 * 1024;
constexpr const char* kClientId = "bench-client";
constexpr const char* kClientSecret = "bench-secret";

// CPU seconds of this whole process (every thread: our client and the in-process emulator).
double ProcessCpuSeconds();
double Median(std::vector<double> v);
int64_t EnvInt(const char* name, int64_t fallback);

// The `iot` schema: id int64 and ts timestamp[us, UTC] non-null, device_id utf8, site
// dictionary<int32, utf8>, four float64 measures with 5% nulls, status int32, alarm bool.
std::shared_ptr<arrow::Schema> IotSchema();
// kBatchRows rows of it, ids from first_id.
std::shared_ptr<arrow::RecordBatch> IotBatch(int64_t first_id, uint64_t seed);

// `num_batches` iot batches, encoded.
struct Workload {
  DescriptorProto descriptor;
  std::vector<EncodedBatch> batches;
  int64_t rows = 0;
  int64_t bytes = 0;  // framed record bytes (what goes on the wire, less a few header bytes)
};
Workload EncodeWorkload(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches);

// The emulator with the null sink and our principal, started on free loopback ports, with
// `tables` declared (exits the process if it cannot start).
std::unique_ptr<emulator::Emulator> StartNullSinkEmulator(
    const std::string& data_dir, std::vector<emulator::TableDeclaration> tables = {});
// OAuth headers for `table` from the emulator's token endpoint.
std::shared_ptr<HeadersProvider> BenchHeaders(const emulator::Emulator& emu,
                                              const std::string& table);

// Rows the emulator has taken into `table` so far (its /admin/stats document): a run's
// difference checks that every row arrived.
int64_t RowsTaken(const emulator::Emulator& emu, const std::string& table);

// Files for the vendor script: the records of every batch (per batch a u32 count, then per
// record u32 length + bytes, little endian), the rows' FileDescriptorProto, and Arrow batches
// as an IPC file.
std::string WriteRowsFile(const Workload& w, const std::string& dir);
std::string WriteDescriptorFile(const Workload& w, const std::string& dir);
std::string WriteArrowFile(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                           const std::string& dir);

// One run of bench/e2e/vendor_sdk_ingest.py with `args` (its input options) and `streams`
// streams against `endpoint` (the emulator's when empty). Returns its {"rows","seconds",
// "cpu_seconds","rows_per_s"} object, or nothing (with the script's output on stderr) when it
// failed.
std::optional<nlohmann::json> RunVendor(const emulator::Emulator& emu, const std::string& table,
                                        const std::string& args, int streams,
                                        const std::string& endpoint = "");

}  // namespace arrow_zerobus::bench
