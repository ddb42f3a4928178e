// The C++ baseline of bench_python_send.py: reads the batches of an Arrow IPC file into memory,
// then sends them through ZerobusWrapper exactly as the Python benchmark does, into the same
// emulator, and prints one JSON line of rows/s.
//   awaited:   SendBatch per batch (wait for its acks before the next)
//   pipelined: SendBatchAsync for every batch, then wait for all the results
// Usage: cpp_send_peer FILE.arrow|FILE.parquet MODE   (MODE awaited|pipelined)
// A .parquet file is read in batches of AZ_PEER_BATCH_ROWS rows (default 65536, the batch size
// of `zerobus-arrow send`), all into memory before the timed sends (bench_cli_send.py).
// Connection settings come from ZEROBUS_* environment variables (WrapperConfiguration::
// FromEnvironment), so the secret never appears on a command line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/record_batch.h>
#include <nlohmann/json.hpp>
#include <parquet/arrow/reader.h>

#include "arrow_zerobus/arrow_zerobus.h"

namespace az = arrow_zerobus;
using Clock = std::chrono::steady_clock;

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadBatches(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  if (EndsWith(path, ".parquet")) {
    ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    const char* rows = std::getenv("AZ_PEER_BATCH_ROWS");
    reader->set_batch_size(rows ? std::stoll(rows) : 64 * 1024);
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->GetRecordBatchReader());
    return batches->ToRecordBatches();
  }
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  for (int i = 0; i < reader->num_record_batches(); ++i) {
    ARROW_ASSIGN_OR_RAISE(auto b, reader->ReadRecordBatch(i));
    out.push_back(std::move(b));
  }
  return out;
}

arrow::Status Run(const std::string& path, const std::string& mode) {
  ARROW_ASSIGN_OR_RAISE(auto batches, ReadBatches(path));
  ARROW_ASSIGN_OR_RAISE(auto config, az::WrapperConfiguration::FromEnvironment());
  ARROW_ASSIGN_OR_RAISE(auto wrapper, az::ZerobusWrapper::Make(config));
  // Warm-up: opens the stream, plans the encoder.
  ARROW_ASSIGN_OR_RAISE(auto warm, wrapper.SendBatch(*batches.front()));
  if (warm.failed_count != 0) return arrow::Status::Invalid("warm-up rows failed: ", warm.ToString());
  int64_t rows = 0, successful = 0;
  const auto start = Clock::now();
  if (mode == "awaited") {
    for (const auto& b : batches) {
      ARROW_ASSIGN_OR_RAISE(auto r, wrapper.SendBatch(*b));
      rows += r.total_rows;
      successful += r.successful_count;
    }
  } else if (mode == "pipelined") {
    std::vector<arrow::Future<az::TransmissionResult>> pending;
    pending.reserve(batches.size());
    for (const auto& b : batches) {
      ARROW_ASSIGN_OR_RAISE(auto f, wrapper.SendBatchAsync(*b));
      pending.push_back(std::move(f));
    }
    for (auto& f : pending) {
      ARROW_ASSIGN_OR_RAISE(auto r, f.result());
      rows += r.total_rows;
      successful += r.successful_count;
    }
  } else {
    return arrow::Status::Invalid("mode must be awaited or pipelined, got ", mode);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ARROW_RETURN_NOT_OK(wrapper.Shutdown());
  if (successful != rows) {
    return arrow::Status::Invalid(rows - successful, " of ", rows, " rows failed");
  }
  nlohmann::json out = {{"mode", mode}, {"rows", rows}, {"seconds", seconds},
                        {"rows_per_s", static_cast<double>(rows) / seconds}};
  std::printf("%s\n", out.dump().c_str());
  return arrow::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FILE.arrow|FILE.parquet awaited|pipelined\n", argv[0]);
    return 2;
  }
  arrow::Status st = Run(argv[1], argv[2]);
  if (!st.ok()) {
    std::fprintf(stderr, "cpp_send_peer: %s\n", st.ToString().c_str());
    return 1;
  }
  return 0;
}
