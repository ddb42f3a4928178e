// Tables on disk. A TableStore owns the tables of one data directory, each a real Delta table at
// data_dir/<catalog>/<schema>/<table>/ (Parquet data files + _delta_log JSON commits). Rows
// appended by many streams are grouped into one commit by time and row count by a background
// committer thread; each append's callback runs once its rows are durable (data file and log
// entry fsynced), in append order per table. The null sink validates/decodes upstream and
// acknowledges at once without storing anything (for benchmarks).
//
// Thread-safety: TableStore and Table are thread-safe. on_durable callbacks run on the
// committer thread (or, for the null sink, on the caller's thread inside Append); they must not
// block for long and must not call Append on the same table.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "decode/emulator_status.h"
#include "decode/table_schema.h"

namespace arrow_zerobus::emulator {

enum class SinkKind { kDelta, kNull };

struct TableStoreOptions {
  // Root directory of the tables (created if missing). Required for the Delta sink.
  std::string data_dir;
  SinkKind sink = SinkKind::kDelta;
  // A commit is made when the oldest pending row has waited this long...
  int commit_interval_ms = 50;
  // ...or when this many rows are pending, whichever comes first.
  int64_t commit_max_rows = 1'000'000;
  // Unknown tables are NOT_FOUND instead of being created from the first stream's descriptor.
  bool strict = false;
  // fsync data files, log entries and directories. Off only for benchmarks/tests that do not
  // care about power loss (a process crash is still safe without it).
  bool fsync = true;
  static TableStoreOptions Defaults() { return TableStoreOptions(); }
};

struct TableStats {
  int64_t rows = 0;      // rows made durable (or acknowledged, null sink)
  int64_t bytes = 0;     // wire bytes of those rows, as passed to Append
  int64_t commits = 0;   // Delta commits made by this process
  int64_t version = -1;  // latest Delta version on disk (-1: none)
  int64_t pending_rows = 0;  // appended, not yet durable
};

using DurableCallback = std::function<void(arrow::Status)>;

class Table {
 public:
  virtual ~Table() = default;

  // "catalog.schema.table"
  virtual const std::string& name() const = 0;
  virtual const std::shared_ptr<arrow::Schema>& schema() const = 0;

  // Queues `batch` (in the table's schema; other schemas give Invalid through the callback) for
  // the next commit. `wire_bytes` is counted in the stats. `on_durable` is called exactly once:
  // OK after the commit holding these rows is durable, or the error that made it fail. Calls
  // on one table complete in the order of Append calls.
  virtual void Append(std::shared_ptr<arrow::RecordBatch> batch, int64_t wire_bytes,
                      DurableCallback on_durable) = 0;

  virtual TableStats stats() const = 0;
};

class TableStore {
 public:
  // Opens (and creates) data_dir and reopens every Delta table found in
  // data_dir/<catalog>/<schema>/<table>: schema from its log, next version after the highest
  // commit. Data files not referenced by the log (left by a crash) are ignored.
  static arrow::Result<std::shared_ptr<TableStore>> Open(const TableStoreOptions& options);

  virtual ~TableStore() = default;

  // Declares a table up front (strict mode needs this). `name` is catalog.schema.table with
  // each part [A-Za-z0-9_]+. Declaring an existing table with an equal schema is OK; with a
  // different schema it is ALREADY_EXISTS. With the Delta sink the table directory and its
  // first commit (protocol + metaData) are written before this returns.
  virtual arrow::Status Declare(const std::string& name, std::shared_ptr<arrow::Schema> schema) = 0;

  // The table a stream with `descriptor` will write to: an existing/declared table whose schema
  // the descriptor matches (CheckDescriptorAgainstSchema, INVALID_ARGUMENT otherwise), or, when
  // not strict, a new table created from the descriptor (SchemaFromDescriptor). Unknown table in
  // strict mode: NOT_FOUND. Bad name: INVALID_ARGUMENT.
  virtual arrow::Result<std::shared_ptr<Table>> OpenForWrite(const std::string& name,
                                                             const DescriptorProto& descriptor) = 0;
  // An existing table (e.g. for JSON streams without a descriptor); NOT_FOUND if unknown.
  virtual arrow::Result<std::shared_ptr<Table>> OpenExisting(const std::string& name) = 0;

  // Schema of a table (UC tables endpoint); NOT_FOUND if unknown.
  virtual arrow::Result<std::shared_ptr<arrow::Schema>> GetSchema(const std::string& name) const = 0;
  // Full names, sorted.
  virtual std::vector<std::string> ListTables() const = 0;
  virtual arrow::Result<TableStats> Stats(const std::string& name) const = 0;

  // Directory of a table's Delta files (empty for the null sink); NOT_FOUND if unknown.
  virtual arrow::Result<std::string> TablePath(const std::string& name) const = 0;

  // Commits everything pending now and waits until it is durable (callbacks have run).
  virtual arrow::Status Flush() = 0;
  // Flush, then stop the committer thread. Later Appends fail with an error. Idempotent; the
  // destructor calls it.
  virtual arrow::Status Close() = 0;

  const TableStoreOptions& options() const { return options_; }

 protected:
  explicit TableStore(TableStoreOptions options) : options_(std::move(options)) {}
  TableStoreOptions options_;
};

}  // namespace arrow_zerobus::emulator
