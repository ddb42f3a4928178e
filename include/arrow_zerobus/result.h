// TransmissionResult: the per-row outcome of one send_batch, with the helpers of the Python API
// (python-api.md): failed/successful indices, extracting those rows as a RecordBatch, grouping
// row errors by kind, statistics, and a check of the accounting invariants.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include "arrow_zerobus/errors.h"

namespace arrow_zerobus {

struct FailedRow {
  int64_t row_index = 0;
  // Starts with its kind's display prefix ("Conversion error: ...") when made by this library.
  std::string message;

  friend bool operator==(const FailedRow& a, const FailedRow& b) {
    return a.row_index == b.row_index && a.message == b.message;
  }
};

// The kind of a row error message: a class-name prefix ("ConversionError: ...") or a display
// prefix ("Conversion error: ...") names it; anything else counts as a ConversionError
// (python-api.md).
ErrorKind ErrorKindOfMessage(std::string_view message);

struct ErrorStatistics {
  int64_t total_rows = 0;
  int64_t successful_count = 0;
  int64_t failed_count = 0;
  double success_rate = 0.0;  // 0.0 when there are no rows
  double failure_rate = 0.0;  // 0.0 when there are no rows
  // Class name ("ConversionError") -> failed rows of that kind.
  std::map<std::string, int64_t> error_type_counts;
};

// A plain value: copy freely; const methods may be called from several threads at once.
struct TransmissionResult {
  // True when at least one row was delivered, or the batch was empty.
  bool success = false;
  std::optional<std::string> error;
  int32_t attempts = 1;
  std::optional<double> latency_ms;
  int64_t batch_size_bytes = 0;
  // Sorted by row_index, no duplicates.
  std::vector<FailedRow> failed_rows;
  // Sorted, no duplicates.
  std::vector<int64_t> successful_rows;
  int64_t total_rows = 0;
  int64_t successful_count = 0;
  int64_t failed_count = 0;
  // Failed rows whose request reached the server and was not acknowledged before its stream
  // ended: they may be in the table (at-least-once), so sending them again may duplicate them.
  // Sorted, unique, a subset of failed_rows; their messages say so.
  std::vector<int64_t> in_doubt_rows;
  // Rows the wrapper sent again on a fresh stream after their stream failed (each re-send
  // counts), and record copies that went on the wire again (the streams' replays plus those
  // re-sends of requests that had been on the wire): the table may hold up to replayed_rows
  // duplicates of this batch's rows (at-least-once).
  int64_t retried_rows = 0;
  int64_t replayed_rows = 0;
  // Copies of this batch's rows that went on the wire (every send of every row, acknowledged or
  // not), and rows that went more than once; bounded by max_sends_per_row per row.
  int64_t wire_copies = 0;
  int64_t rows_sent_more_than_once = 0;

  // Builds a result from per-row outcomes: sorts both lists, sets the counts and `success`.
  // Every row of [0, total_rows) must be in exactly one list (checked: Invalid otherwise).
  static arrow::Result<TransmissionResult> FromRowOutcomes(int64_t total_rows,
                                                           std::vector<int64_t> successful_rows,
                                                           std::vector<FailedRow> failed_rows);
  // One result for consecutive parts of one input (a table or stream sent batch by batch): row
  // indices of each part are shifted by the rows of the parts before it, counts and bytes add
  // up, attempts is the largest, latency the longest, the error the first one.
  static TransmissionResult Concatenate(const std::vector<TransmissionResult>& parts);
  // The batch failed as a whole: every row is failed with the rendered error (RenderError).
  static TransmissionResult WholeBatchFailure(int64_t total_rows, const arrow::Status& error,
                                              int32_t attempts = 1);

  std::vector<int64_t> FailedRowIndices() const;
  const std::vector<int64_t>& SuccessfulRowIndices() const { return successful_rows; }
  // The failed rows whose message is of the kind named `error_type` ("ConversionError").
  std::vector<int64_t> FailedRowIndicesByErrorType(std::string_view error_type) const;
  // Class name -> failed row indices (ascending).
  std::map<std::string, std::vector<int64_t>> GroupErrorsByType() const;
  ErrorStatistics Statistics() const;
  // The failed rows' messages, in row order.
  std::vector<std::string> ErrorMessages() const;

  bool IsPartialSuccess() const { return successful_count > 0 && failed_count > 0; }
  bool HasFailedRows() const { return !failed_rows.empty(); }
  bool HasSuccessfulRows() const { return !successful_rows.empty(); }

  // The rows of `batch` at the failed / successful indices, in index order; nullptr when there
  // are none. Invalid when an index is outside the batch (the batch is not the one sent).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ExtractFailedBatch(
      const arrow::RecordBatch& batch) const;
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ExtractSuccessfulBatch(
      const arrow::RecordBatch& batch) const;

  // Checks the accounting: counts match the lists, successful + failed == total, lists sorted,
  // unique, disjoint and inside [0, total_rows), `success` consistent. Invalid naming the rule.
  arrow::Status CheckInvariants() const;

  // "TransmissionResult(success=true, total_rows=10, successful=8, failed=2, attempts=1, ...)".
  std::string ToString() const;
};

// Takes the rows at `indices` (ascending, inside the batch) as one RecordBatch, copying runs of
// consecutive rows at once. Invalid naming the first bad index.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(const arrow::RecordBatch& batch,
                                                            const std::vector<int64_t>& indices);

}  // namespace arrow_zerobus
