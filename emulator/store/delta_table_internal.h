// Private: one Delta table directory. Writes Parquet data files and _delta_log commits with the
// durability order: data file fsynced, then the commit published atomically without replacing
// an existing version. Not thread-safe: the store's committer thread is its only writer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace arrow_zerobus::emulator::internal {

struct DeltaCommitResult {
  int64_t version = -1;
  int64_t rows = 0;
  int64_t file_bytes = 0;
  std::string data_file;  // relative to the table directory
};

class DeltaTable {
 public:
  // Creates the directory (if needed) and commit 0 (commitInfo, protocol, metaData).
  // AlreadyExists if the directory already holds a commit 0.
  static arrow::Result<std::unique_ptr<DeltaTable>> Create(const std::string& path,
                                                           const std::string& name,
                                                           std::shared_ptr<arrow::Schema> schema,
                                                           bool fsync);
  // Reopens a table: schema from the latest metaData, next version after the highest commit.
  // Leftover temporary commit files are removed; unreferenced data files are left alone (they
  // are not part of the table).
  static arrow::Result<std::unique_ptr<DeltaTable>> Open(const std::string& path, bool fsync);
  // True when `path` holds a _delta_log with at least commit 0.
  static bool Exists(const std::string& path);

  // Writes all batches as one Parquet file and commits it as the next version.
  arrow::Result<DeltaCommitResult> Append(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches);

  const std::shared_ptr<arrow::Schema>& schema() const { return schema_; }
  int64_t version() const { return version_; }
  const std::string& path() const { return path_; }

 private:
  DeltaTable(std::string path, std::shared_ptr<arrow::Schema> schema, int64_t version, bool fsync)
      : path_(std::move(path)), schema_(std::move(schema)), version_(version), fsync_(fsync) {}

  std::string path_;
  std::shared_ptr<arrow::Schema> schema_;
  int64_t version_;  // latest committed version
  bool fsync_;
};

// "00000000000000000012.json"
std::string CommitFileName(int64_t version);
// The "stats" JSON of an add action: numRecords, and minValues/maxValues/nullCount for top-level
// primitive columns (strings: min/max only when exact within 32 bytes; timestamps rounded
// outward to milliseconds so the bounds stay true).
std::string ComputeStatsJson(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                             const arrow::Schema& schema);

}  // namespace arrow_zerobus::emulator::internal
