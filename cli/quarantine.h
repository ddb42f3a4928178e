// The quarantine file: the rows that did not land, with their original columns plus where they
// came from and why they failed, in a form that can be fixed and sent again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "arrow_zerobus/result.h"

namespace arrow_zerobus::cli {

class Quarantine {
 public:
  // The format follows the extension: .parquet, .arrow/.feather (IPC file) or .arrows (IPC
  // stream). An existing file is refused unless `overwrite` (a resumed send must not lose the
  // rows an earlier run quarantined). Nothing is written until the first failed row.
  static arrow::Result<std::unique_ptr<Quarantine>> Open(const std::string& path, bool overwrite);
  ~Quarantine();

  // Appends the failed rows of one sent batch: `batch` is what was sent, `first_row` the file
  // row of its row 0. Columns added: _source_file, _source_row, _error, _in_doubt.
  arrow::Status Write(const arrow::RecordBatch& batch, const TransmissionResult& result,
                      const std::string& source_file, int64_t first_row);
  // An IPC stream is flushed after every write, so what it holds survives a crash; Parquet and
  // IPC files are readable only once closed.
  bool durable_on_write() const;
  arrow::Status Close();

  int64_t rows() const { return rows_; }
  const std::string& path() const { return path_; }

 private:
  struct Writer;
  Quarantine(std::string path, int format);
  std::string path_;
  int format_;
  std::unique_ptr<Writer> writer_;
  std::shared_ptr<arrow::Schema> schema_;
  int64_t rows_ = 0;
};

}  // namespace arrow_zerobus::cli
